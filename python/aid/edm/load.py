"""Loading EDM backbones: this project's safetensors checkpoints (config in the metadata).
Every loaded backbone is returned frozen: eval mode, requires_grad False."""
from __future__ import annotations

import os

import torch

from ..checkpoint import load_state, read_metadata
from .networks import EDMPrecond


def freeze(net: torch.nn.Module) -> torch.nn.Module:
    return net.eval().requires_grad_(False)


def load(path: str, device="cpu") -> EDMPrecond:
    """A frozen EDMPrecond from a .safetensors checkpoint written by aid (save_module)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"aid.edm.load: no such file: {path}")
    if not path.endswith(".safetensors"):
        raise ValueError(f"aid.edm.load: {path}: expected a .safetensors checkpoint written by aid")
    kind, config, _ = read_metadata(path)
    if kind != "EDMPrecond":
        raise ValueError(f"aid.edm.load: {path} holds a {kind!r}, not an EDMPrecond backbone")
    net = EDMPrecond(**config)
    net.load_state_dict(load_state(path), strict=True)
    return freeze(net).to(device)
