"""The package reports how it was built and refuses a torch it was not built for; a CUDA build carries
the default architectures (SASS + PTX) and its ops never wait for the device."""
import glob
import os
import shutil
import subprocess

import pytest
import torch

import aid_ext
from aid_ext.testing import OPS, inputs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_ARCHS = "8.0 9.0+PTX"  # CMakeLists.txt's AID_EXT_CUDA_ARCHS, as build_info() spells it
needs_cuda_build = pytest.mark.skipif(not aid_ext.build_info()["with_cuda"],
                                      reason="a build without CUDA kernels (.ci/cuda_builds.sh builds one)")


def test_build_info_names_torch_cuda_and_compiler():
    info = aid_ext.build_info()
    assert set(info) >= {"torch_version", "with_cuda", "cuda_version", "cuda_archs", "cuda_note", "compiler",
                         "cxx11_abi"}
    assert info["torch_version"] == torch.__version__
    assert isinstance(info["with_cuda"], bool)
    assert info["with_cuda"] == bool(info["cuda_archs"])
    if torch.version.cuda is None:
        assert not info["with_cuda"], "a CPU build of torch cannot have built CUDA kernels"


def test_every_op_is_registered_with_cpu_kernel():
    for name in ["edm_scale_input", "edm_denoise", "edm_euler_step", "edm_heun_correct", "edm_ddim_step",
                 "edm_renoise", "mask_project"]:
        dump = torch._C._dispatch_dump(f"aid_ext::{name}")
        assert "CPU:" in dump and "Meta:" in dump and "Autograd" in dump, dump
        if aid_ext.build_info()["with_cuda"]:
            assert "CUDA:" in dump


def test_torch_mismatch_is_a_readable_import_error():
    aid_ext.check_torch("2.13.0+cpu", "2.13.1")  # same major.minor: fine
    with pytest.raises(ImportError, match=r"built against torch 2\.13\.0\+cpu but torch 2\.11\.0 is running"):
        aid_ext.check_torch("2.13.0+cpu", "2.11.0")


def test_a_cpu_only_build_against_a_cuda_torch_says_why():
    info = aid_ext.build_info()
    if info["with_cuda"] or torch.version.cuda is None:
        pytest.skip("only a CPU-only build against a CUDA build of torch has a reason to give "
                    "(.ci/cuda_builds.sh builds one with nvcc hidden)")
    assert "nvcc was not found" in info["cuda_note"] or info["cuda_note"] == "AID_EXT_CUDA=OFF", info


def _cuobjdump():
    found = shutil.which("cuobjdump") or next(iter(glob.glob(os.path.join(
        os.path.dirname(os.path.dirname(torch.__file__)), "nvidia", "cu*", "bin", "cuobjdump"))), None)
    if found is None:
        pytest.skip("cuobjdump not found (pip install nvidia-cuda-cuobjdump, as .ci/cuda_builds.sh does)")
    return found


@needs_cuda_build
def test_the_default_cuda_build_has_sass_for_sm80_sm90_and_ptx_for_newer_cards():
    info = aid_ext.build_info()
    if os.environ.get("AID_EXT_CUDA_ARCHS"):
        pytest.skip("built for other architectures (AID_EXT_CUDA_ARCHS is set)")
    assert info["cuda_archs"] == DEFAULT_ARCHS
    lib = os.path.join(os.path.dirname(aid_ext._C.__file__), aid_ext._C.ops_library())
    tool = _cuobjdump()
    elf = subprocess.run([tool, "--list-elf", lib], capture_output=True, text=True, check=True).stdout
    ptx = subprocess.run([tool, "--list-ptx", lib], capture_output=True, text=True, check=True).stdout
    assert "sm_80" in elf and "sm_90" in elf, elf
    assert "sm_90" in ptx and "sm_80" not in ptx, ptx  # PTX only for the newest arch: newer cards JIT it


def test_the_cuda_backend_never_reads_a_device_value_back():
    """Static half of the sync-free check (the GPU half is below): the CUDA host code launches and returns."""
    src = open(os.path.join(ROOT, "csrc", "cuda", "ops_cuda.cu")).read()
    for call in (".item<", "cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaMemcpy", ".cpu()", ".to(at::kCPU"):
        assert call not in src, call


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: an op call must return while the "
                                                          "GPU is still busy with earlier work")
@needs_cuda_build
def test_cuda_ops_return_before_the_device_finishes():
    calls = [(getattr(aid_ext, name), *inputs(name, shape=(4, 3, 64, 64), device="cuda")) for name in OPS]
    for op, args, kwargs in calls:  # warm up (first launches load the kernels)
        op(*args, **kwargs)
    torch.cuda.synchronize()
    torch.cuda._sleep(2_000_000_000)  # about a second of device time queued ahead of the ops
    for op, args, kwargs in calls:
        op(*args, **kwargs)
    busy = not torch.cuda.current_stream().query()
    torch.cuda.synchronize()
    assert busy, "an aid_ext op waited for the GPU"
