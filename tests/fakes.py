"""Synthetic stand-ins shared by tests in several folders (tests/ is on sys.path: it holds conftest.py)."""
import copyreg
import gzip
import sys
import types

import numpy as np
import torch


def write_idx(path, array: np.ndarray):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _fake_persistence_module(marker):
    """A stand-in torch_utils.persistence whose rebuild function runs the embedded source, like the real one."""
    pkg, mod = types.ModuleType("torch_utils"), types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        exec(meta["module_src"], {})  # what EDM's stock loader does: this is the danger
        return meta

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
    pkg.persistence = mod
    return {"torch_utils": pkg, "torch_utils.persistence": mod}


class Persistent:
    """Pickles as a torch_utils.persistence record: a call of _reconstruct_persistent_obj(meta), the
    function taken from the (fake) module installed in sys.modules while pickling."""

    def __init__(self, meta):
        self.meta = meta

    def __reduce__(self):
        return sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj, (self.meta,)


class ModuleDictStandIn:
    """Pickles as torch.nn.ModuleDict (NEWOBJ + BUILD), as a real one does, but may hold stand-ins."""

    def __init__(self, state):
        self.state = state

    @property
    def __class__(self):  # pickle checks that NEWOBJ's class is the object's class
        return torch.nn.ModuleDict

    def __reduce_ex__(self, protocol):
        return copyreg.__newobj__, (torch.nn.ModuleDict,), self.state


def run_state(run_dir):
    """A training run's state.pt (aid.guidance.train), tensors only."""
    import os
    return torch.load(os.path.join(run_dir, "state.pt"), weights_only=True)


def assert_trees_equal(a, b):
    """Every tensor and number of two nested states equal, bitwise."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_trees_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_trees_equal(x, y)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert a == b
