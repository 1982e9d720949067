"""Writing images: tensors in [-1, 1] to PNG files and grids."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from aid.core.checkpoint import atomic_write
from aid.data.datasets import to_uint8


def grid(x: torch.Tensor, nrow: int, pad: int = 1, pad_value: float = 1.0) -> torch.Tensor:
    """[N, C, H, W] in [-1, 1] → one [C, rows·(H+pad)+pad, nrow·(W+pad)+pad] image."""
    if x.dim() != 4:
        raise ValueError(f"grid: expected [N, C, H, W], got {list(x.shape)}")
    N, C, H, W = x.shape
    rows = -(-N // nrow)
    out = torch.full((C, rows * (H + pad) + pad, nrow * (W + pad) + pad), pad_value, dtype=x.dtype)
    for i in range(N):
        r, c = divmod(i, nrow)
        out[:, pad + r * (H + pad): pad + r * (H + pad) + H, pad + c * (W + pad): pad + c * (W + pad) + W] = x[i]
    return out


def save_png(x: torch.Tensor, path: str, scale: int = 1) -> None:
    """One [C, H, W] image in [-1, 1] (C = 1 or 3) to PNG, optionally enlarged by pixel replication; written
    atomically (aid.core.checkpoint.atomic_write: readers see the old file or the new one)."""
    a = to_uint8(x.detach().cpu()).numpy()
    a = a[0] if a.shape[0] == 1 else np.transpose(a, (1, 2, 0))
    img = Image.fromarray(a)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))  # a full disk or a kill leaves no half PNG


HOLE_RGB = (-0.5, -0.1, 0.7)  # the hole in a masked input: a flat blue, in [-1, 1]


def masked_input(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One [C, H, W] image (C = 1 or 3) and its [1, H, W] mask (1 = known) → [3, H, W]: the known
    pixels as they are (gray for C = 1), the hole in a flat blue (HOLE_RGB)."""
    if x.dim() != 3 or x.shape[0] not in (1, 3) or mask.shape != (1, *x.shape[1:]):
        raise ValueError(f"masked_input: expected a [1 or 3, H, W] image and a [1, H, W] mask, got "
                         f"{list(x.shape)} and {list(mask.shape)}")
    rgb = x.expand(3, -1, -1).clone()
    rgb[:, mask[0] == 0] = torch.tensor(HOLE_RGB, dtype=rgb.dtype)[:, None]
    return rgb


def save_grid(x: torch.Tensor, path: str, nrow: int = 8, scale: int = 2) -> None:
    save_png(grid(x, nrow), path, scale)
