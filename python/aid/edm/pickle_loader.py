"""Reading official NVlabs/edm `.pkl` snapshots without executing anything in them.

An EDM snapshot pickles each network object as a "persistent" record: the full source of
its defining module plus the object's state, rebuilt by the stock loader with `exec`. Here
a restricted unpickler maps that record to an inert stub (the source is never run), allows
only the few other globals such a file needs (torch's tensor rebuilders, OrderedDict,
numpy scalars, EasyDict), and refuses every other global by name. The stub tree gives the
constructor arguments (`_init_kwargs`) and the tensors; our own EDMPrecond is built from
those and loaded with strict=True. Facts: NVlabs/edm's torch_utils/persistence.py and its
network pickles (read, not copied).
"""
from __future__ import annotations

import collections
import io
import pickle

import numpy as np
import torch

from aid.edm.networks import EDMPrecond


class PersistentStub:
    """What a persistent object becomes: its class name and state; its source is kept as text only."""

    def __init__(self, meta: dict):
        if not isinstance(meta, dict) or meta.get("type") != "class" or meta.get("version") != 6:
            raise pickle.UnpicklingError(f"unsupported persistent object record: {str(meta)[:200]}")
        self.class_name = meta.get("class_name")
        self.state = meta.get("state") or {}


class ModuleDictStub:
    """torch.nn.ModuleDict as plain data: pickle fills its __dict__ (with _modules)."""


class EasyDictStub(dict):
    """dnnlib.util.EasyDict as a plain dict."""


def _load_storage_bytes(data: bytes):
    """A storage pickled as torch.save bytes: read with torch's weights-only unpickler (never a full unpickle)."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentStub,
    ("torch.nn.modules.container", "ModuleDict"): ModuleDictStub,
    ("dnnlib.util", "EasyDict"): EasyDictStub,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy", "dtype"): np.dtype,
    # EDM2's StabilityVAEEncoder stores its whitening scale/bias as float32 arrays.
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy", "ndarray"): np.ndarray,
}


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global '{module}.{name}': an EDM checkpoint needs only persistent network "
                "records, tensors, OrderedDict and numpy scalars, so this file may execute code") from None


def read_pickle(path: str):
    """The unpickled snapshot, with persistent objects as PersistentStub."""
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f).load()
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise ValueError(f"{path}: not a readable EDM checkpoint ({type(e).__name__}: {e})") from e


def _children(stub):
    state = stub.state if isinstance(stub, PersistentStub) else vars(stub)
    return state, state.get("_modules") or {}


def stub_state_dict(stub, prefix: str = "") -> dict[str, torch.Tensor]:
    """The state_dict the original module would give: parameters, persistent buffers, recursively."""
    state, modules = _children(stub)
    out = {}
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, t in (state.get(group) or {}).items():
            if t is not None and name not in skip:
                out[prefix + name] = t.detach() if isinstance(t, torch.Tensor) else torch.as_tensor(t)
    for name, child in modules.items():
        if child is not None:
            out.update(stub_state_dict(child, f"{prefix}{name}."))
    return out


def _plain(v):
    """numpy scalars and containers in constructor arguments → Python values."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def network_stub(path: str, key: str, class_name: str) -> tuple[dict, PersistentStub, dict]:
    """(snapshot, data[key], its constructor kwargs) for a snapshot whose data[key] is a `class_name`
    (EDM: a dict with EDMPrecond; EDM2: an EasyDict with Precond)."""
    data = read_pickle(path)
    if not isinstance(data, dict) or key not in data:
        raise ValueError(f"{path}: expected a snapshot dict with key {key!r}, got {type(data).__name__}")
    stub = data[key]
    if not isinstance(stub, PersistentStub) or stub.class_name != class_name:
        name = getattr(stub, "class_name", type(stub).__name__)
        raise ValueError(f"{path}: data[{key!r}] is a {name!r}; only {class_name} backbones are supported")
    if stub.state.get("_init_args"):
        raise ValueError(f"{path}: {class_name} was built with positional arguments; expected keyword arguments only")
    return data, stub, _plain(dict(stub.state.get("_init_kwargs") or {}))


def load_edm_pickle(path: str, key: str = "ema") -> EDMPrecond:
    """Our EDMPrecond with the weights of data[key] from an official EDM snapshot, frozen."""
    _, stub, kwargs = network_stub(path, key, "EDMPrecond")
    net = EDMPrecond(**kwargs)
    net.load_state_dict(stub_state_dict(stub), strict=True)
    return net.eval().requires_grad_(False)
