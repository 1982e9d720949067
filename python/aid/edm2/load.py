"""Loading EDM2 backbones: official NVlabs/edm2 `.pkl` files (read by aid.edm's restricted
unpickler, which never runs their embedded source) and this project's safetensors checkpoints.

An EDM2 snapshot is a `dnnlib.util.EasyDict` {encoder, dataset_kwargs, loss_fn, ema} whose
`ema` Precond is stored in float16 (as NVlabs/edm2 pickles it); the weights are cast to the dtype asked
for, loaded with strict=True, frozen, and each layer's normalised weight is precomputed."""
from __future__ import annotations

import os

import torch

from aid.core.checkpoint import load_module, save_module
from aid.edm.pickle_loader import network_stub, stub_state_dict
from aid.edm2.networks import Precond

KIND = "EDM2Precond"


def _finish(net: Precond, device) -> Precond:
    return net.eval().requires_grad_(False).to(device).precompute()


def load_edm2_pickle(path: str, dtype=torch.float32, key: str = "ema") -> tuple[Precond, dict]:
    """(our Precond with data[key]'s weights cast to dtype, unfrozen; the snapshot's other entries
    as stubs: 'encoder' tells a latent net (StabilityVAEEncoder) from a pixel one (StandardRGBEncoder))."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"aid.edm2.load: dtype must be a floating torch.dtype, got {dtype!r}")
    data, stub, kwargs = network_stub(path, key, "Precond")
    net = Precond(**kwargs)
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in stub_state_dict(stub).items()}
    net.load_state_dict(state, strict=True)  # copies into net's float32 tensors ...
    return net.to(dtype), {k: v for k, v in data.items() if k != key}  # ... so cast the net itself too


def load(path: str, device="cpu", dtype=torch.float32) -> Precond:
    """A frozen EDM2 Precond, normalised weights precomputed, from an official EDM2 .pkl or a
    .safetensors written by `convert`."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"aid.edm2.load: no such file: {path}")
    if path.endswith(".pkl"):
        return _finish(load_edm2_pickle(path, dtype)[0], device)
    if not path.endswith(".safetensors"):
        raise ValueError(f"aid.edm2.load: {path}: expected an official EDM2 .pkl or a .safetensors checkpoint")
    return _finish(load_module(path, Precond, KIND).to(dtype), device)


def convert(pkl_path: str, out_path: str, dtype=torch.float32) -> None:
    """Official EDM2 .pkl → this project's safetensors (read once safely, never unpickled again)."""
    net, _ = load_edm2_pickle(pkl_path, dtype)
    save_module(net, out_path, KIND, net.init_kwargs, {"converted_from": os.path.basename(pkl_path)})
