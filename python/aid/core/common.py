"""Helpers every layer uses: the device a network lives on, and one random generator per image
(so that an image depends on its own seed only, never on the batch it was drawn in)."""
from __future__ import annotations

from typing import Sequence

import torch


def generators(seeds: Sequence[int], device) -> list[torch.Generator]:
    return [torch.Generator(device).manual_seed(int(s)) for s in seeds]


def randn_per_sample(gens: list[torch.Generator], shape, device, dtype=torch.float32) -> torch.Tensor:
    """One normal draw per image from that image's own generator: [len(gens), *shape]."""
    return torch.stack([torch.randn(shape, generator=g, device=device, dtype=dtype) for g in gens])


def device_of(net) -> torch.device:
    for t in list(net.parameters()) + list(net.buffers()):
        return t.device
    return torch.device("cpu")
