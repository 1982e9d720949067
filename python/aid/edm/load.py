"""Loading EDM backbones: official NVlabs/edm `.pkl` snapshots (read safely, see
pickle_loader) and this project's safetensors checkpoints (config in the metadata).
Every loaded backbone is returned frozen: eval mode, requires_grad False."""
from __future__ import annotations

import os

import torch

from aid.core.checkpoint import ASSETS, load_module, save_module
from aid.edm.networks import EDMPrecond
from aid.edm.pickle_loader import load_edm_pickle

# The bundled default backbone (trained by aid.edm.train on Fashion-MNIST 32×32; card in assets/README.md).
DEFAULT_BACKBONE = os.path.join(ASSETS, "edm_fmnist32.safetensors")


def freeze(net: torch.nn.Module) -> torch.nn.Module:
    return net.eval().requires_grad_(False)


def load(path: str = DEFAULT_BACKBONE, device="cpu") -> EDMPrecond:
    """A frozen EDMPrecond from an official EDM .pkl or a .safetensors checkpoint written by aid
    (by default the bundled Fashion-MNIST backbone)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"aid.edm.load: no such file: {path}")
    if path.endswith(".pkl"):
        return freeze(load_edm_pickle(path)).to(device)
    if not path.endswith(".safetensors"):
        raise ValueError(f"aid.edm.load: {path}: expected an official EDM .pkl or a .safetensors checkpoint")
    return load_module(path, EDMPrecond, "EDMPrecond").to(device)


def convert(pkl_path: str, out_path: str) -> None:
    """Official EDM .pkl → this project's safetensors (read once safely, never unpickled again)."""
    net = load_edm_pickle(pkl_path)
    save_module(net, out_path, "EDMPrecond", net.init_kwargs, {"converted_from": os.path.basename(pkl_path)})
