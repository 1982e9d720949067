"""Helpers every layer uses: the device a network lives on, one random generator per image (so that an
image depends on its own seed only, never on the batch it was drawn in), and the part of an observation a
sampler may read."""
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


def known_part(y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """y where mask > 0, 0 in the hole: the only part of an observation y a sampler reads. Where y enters a
    sampler, so that whatever the hole holds (NaN, inf, an unmasked image) never reaches the result: m⊙y
    alone would turn 0·NaN into NaN. mask broadcasts over y's channels ([B, 1, H, W] or [B, C, H, W])."""
    return torch.where(mask > 0, y, torch.zeros((), dtype=y.dtype, device=y.device))
