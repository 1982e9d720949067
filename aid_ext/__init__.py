"""aid_ext: fused EDM sampler ops (CPU + CUDA) registered as torch.ops.aid_ext.*.

`aid_ext.ops` holds the typed wrappers, `aid_ext.reference` the pure-PyTorch oracle with
the same names and signatures.
"""
from __future__ import annotations

import os
import warnings

import torch

__version__ = "0.1.0"


def _base(version: str) -> tuple[int, int]:
    major, minor = version.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def check_torch(built_for: str, running: str) -> None:
    """Raise ImportError when the running torch is not the major.minor the ops were built for."""
    if _base(built_for) != _base(running):
        raise ImportError(
            f"aid_ext was built against torch {built_for} but torch {running} is running; its C++ ops "
            f"use torch's unstable ABI. Rebuild: pip install --no-build-isolation --force-reinstall .")


try:
    from . import _C
except ImportError as e:  # the package was never built (e.g. imported from a source tree)
    raise ImportError(f"aid_ext's compiled module _C is missing ({e}); install the package with "
                      "`pip install --no-build-isolation -e .` from the repository root") from e


def build_info() -> dict:
    """How the installed ops were built: torch version, CUDA on/off, CUDA version, archs, compiler."""
    return dict(_C.build_info())


check_torch(build_info()["torch_version"], torch.__version__)
if not build_info()["with_cuda"] and torch.cuda.is_available():  # a GPU the ops cannot run on: say why, once
    warnings.warn(f"aid_ext was built without CUDA kernels ({build_info()['cuda_note'] or 'a CPU build of torch'}); "
                  "its ops run on CPU tensors only", stacklevel=2)

# Locate the library next to _C, not next to this file: in an editable install this
# file lives in the source tree while the compiled files live in site-packages.
_lib = os.path.join(os.path.dirname(_C.__file__), _C.ops_library())
try:
    torch.ops.load_library(_lib)
except OSError as e:
    raise ImportError(f"aid_ext could not load its ops library {_lib}: {e}. Built for {build_info()}, "
                      f"running torch {torch.__version__} (CUDA {torch.version.cuda}).") from e

from . import ops, reference  # noqa: E402  (ops registers fake kernels and autograd)
from .ops import (  # noqa: E402
    edm_ddim_step,
    edm_denoise,
    edm_euler_step,
    edm_heun_correct,
    edm_renoise,
    edm_scale_input,
    mask_project,
)

__all__ = ["build_info", "ops", "reference", "edm_scale_input", "edm_denoise", "edm_euler_step",
           "edm_heun_correct", "edm_ddim_step", "edm_renoise", "mask_project"]
