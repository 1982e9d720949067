"""Inpainting masks [B, 1, H, W] float32, 1 = known pixel, 0 = hole; every generator is
seeded per mask, so mask i of a set depends only on (kind, seed, i).

Conventions follow the public code, scaled from 256 px to the resolution: DPS boxes and random pixels
(DPS util/img_utils.py mask_generator), RePaint half images (its genhalf configs), LaMa thick/medium/thin
free-form strokes (lama configs/data_gen/random_*_256.yaml, saicinpainting/training/data/masks.py).
"""
from __future__ import annotations

import math

import numpy as np
import torch

KINDS = ["center_box", "random_box", "pixels50", "pixels70", "pixels90", "half_left", "half_right", "half_top",
         "half_bottom", "lama_thick", "lama_medium", "lama_thin"]
TEST_SET_VERSION = 1  # bump when a generator changes: benchmark masks are (kind, version, index)
# The validation split's masks (choices of hyperparameters and snapshots): masks(kind, n, res, VALIDATION_MASK_SEED),
# disjoint from the benchmark's (10_000 + TEST_SET_VERSION) and the training pools' (20_000 + seed).
VALIDATION_MASK_SEED = 30_000


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def center_box(res: int) -> np.ndarray:
    """A centred hole of half the side (DPS's 128 px box at 256)."""
    m = np.ones((res, res), np.float32)
    s = res // 2
    o = (res - s) // 2
    m[o:o + s, o:o + s] = 0
    return m


def random_box(res: int, rng: np.random.Generator) -> np.ndarray:
    """DPS: a half-side box at a uniform position inside a margin of res/16."""
    m = np.ones((res, res), np.float32)
    s, margin = res // 2, res // 16
    top, left = rng.integers(margin, res - margin - s + 1, size=2)
    m[top:top + s, left:left + s] = 0
    return m


def random_pixels(res: int, missing: float, rng: np.random.Generator) -> np.ndarray:
    """Exactly int(missing·H·W) holes at uniformly chosen pixels (shared over channels)."""
    m = np.ones(res * res, np.float32)
    m[rng.choice(res * res, int(missing * res * res), replace=False)] = 0
    return m.reshape(res, res)


def half(res: int, side: str) -> np.ndarray:
    """The given half of the image is the hole (RePaint's 'genhalf')."""
    m = np.ones((res, res), np.float32)
    h = res // 2
    {"left": lambda: m.__setitem__((slice(None), slice(0, h)), 0),
     "right": lambda: m.__setitem__((slice(None), slice(h, None)), 0),
     "top": lambda: m.__setitem__((slice(0, h), slice(None)), 0),
     "bottom": lambda: m.__setitem__((slice(h, None), slice(None)), 0)}[side]()
    return m


def _draw_segment(hole: np.ndarray, p0, p1, width: float) -> None:
    """Mark pixels whose centres lie within width/2 of the segment p0–p1 (a thick line with round caps)."""
    res = hole.shape[0]
    yy, xx = np.mgrid[0:res, 0:res].astype(np.float64) + 0.5
    d = np.subtract(p1, p0, dtype=np.float64)
    t = ((yy - p0[0]) * d[0] + (xx - p0[1]) * d[1]) / max(d @ d, 1e-12)
    t = np.clip(t, 0, 1)
    dist2 = (yy - p0[0] - t * d[0]) ** 2 + (xx - p0[1] - t * d[1]) ** 2
    hole |= dist2 <= (max(width, 1.0) / 2) ** 2


LAMA = {  # LaMa's random_{thick,medium,thin}_256 rules; lengths in pixels at 256
    "thick": dict(times=(1, 5), max_width=100, max_angle=4, max_len=200, box_p=0.3, box_margin=10,
                  box_size=(30, 150), box_times=(1, 3)),
    "medium": dict(times=(4, 5), max_width=50, max_angle=4, max_len=100, box_p=0.3, box_margin=0,
                   box_size=(10, 50), box_times=(1, 5)),
    "thin": dict(times=(4, 50), max_width=10, max_angle=4, max_len=40, box_p=0.0),
}


def lama(res: int, variant: str, rng: np.random.Generator, max_hole=0.5) -> np.ndarray:
    """LaMa-style free-form mask: random thick strokes (polylines), sometimes boxes; redrawn
    while more than max_hole of the image is hole (LaMa's max_tamper_area)."""
    r, k = LAMA[variant], res / 256
    for _ in range(100):
        hole = np.zeros((res, res), bool)
        for s in range(rng.integers(r["times"][0], r["times"][1] + 1)):
            p = rng.uniform(0, res, size=2)
            for _ in range(1 + rng.integers(0, 5)):
                angle = 0.01 + rng.integers(0, r["max_angle"])
                angle = 2 * math.pi - angle if s % 2 == 0 else angle
                length = (10 + rng.integers(0, r["max_len"])) * k
                width = (5 + rng.integers(0, r["max_width"])) * k
                q = np.clip(p + length * np.array([math.sin(angle), math.cos(angle)]), 0, res - 1)
                _draw_segment(hole, p, q, width)
                p = q
        if r["box_p"] and rng.random() < r["box_p"]:
            margin = int(r["box_margin"] * k)
            for _ in range(rng.integers(r["box_times"][0], r["box_times"][1] + 1)):
                lo, hi = max(1, int(r["box_size"][0] * k)), max(2, int(min(r["box_size"][1] * k, res - 2 * margin)))
                h, w = rng.integers(lo, hi, size=2)
                top = rng.integers(margin, max(margin + 1, res - margin - h))
                left = rng.integers(margin, max(margin + 1, res - margin - w))
                hole[top:top + h, left:left + w] = True
        if 0 < hole.mean() <= max_hole:
            return (~hole).astype(np.float32)
    raise RuntimeError(f"lama({variant}): no mask with a hole area in (0, {max_hole}] in 100 draws at res {res}")


def make_mask(kind: str, res: int, seed: int) -> np.ndarray:
    """One [res, res] mask of the given kind (1 = known)."""
    if kind not in KINDS:
        raise ValueError(f"make_mask: unknown mask kind {kind!r}; choose from {', '.join(KINDS)}")
    if res < 8:
        raise ValueError(f"make_mask: resolution must be >= 8, got {res}")
    rng = _rng(seed)
    if kind == "center_box":
        return center_box(res)
    if kind == "random_box":
        return random_box(res, rng)
    if kind.startswith("pixels"):
        return random_pixels(res, int(kind[6:]) / 100, rng)
    if kind.startswith("half_"):
        return half(res, kind[5:])
    return lama(res, kind[5:], rng)


def masks(kind: str, n: int, res: int, seed: int = 0) -> torch.Tensor:
    """n masks [n, 1, res, res]; mask i is make_mask(kind, res, seed·1_000_003 + i)."""
    return torch.from_numpy(np.stack([make_mask(kind, res, seed * 1_000_003 + i) for i in range(n)]))[:, None]


def mask_pool(kinds, per_kind: int, res: int, seed: int) -> torch.Tensor:
    """A fixed training pool [len(kinds)·per_kind, 1, res, res]: per_kind masks of each kind (DEFT, too,
    trains on a fixed pool). Pass a seed other than the benchmark's (10_000 + TEST_SET_VERSION)."""
    unknown = [k for k in kinds if k not in KINDS]
    if not kinds or unknown:
        raise ValueError(f"mask_kinds must be a non-empty list from {', '.join(KINDS)}; got {kinds}")
    return torch.cat([masks(k, per_kind, res, seed) for k in kinds])


def benchmark_masks(kind: str, n: int, res: int) -> torch.Tensor:
    """The fixed, versioned benchmark set: the same masks on every machine for a given version."""
    return masks(kind, n, res, seed=10_000 + TEST_SET_VERSION)


def mask_from_png(path: str, res: int | None = None, known_is_white: bool = True) -> torch.Tensor:
    """A mask image file → [1, 1, H, W] (thresholded at half intensity; a 16-bit file at half of 65535).
    known_is_white=True is RePaint's convention (255 = known); pass False for LaMa/DEFT files (white = hole).
    A file that cannot be read is a ValueError naming it."""
    from PIL import Image

    from aid.data.datasets import to_8bit
    try:
        img = to_8bit(Image.open(path)).convert("L")
    except Exception as e:  # PIL raises many types for bad files
        raise ValueError(f"cannot read mask image {path}: {e}") from e
    if res is not None and img.size != (res, res):
        img = img.resize((res, res), Image.NEAREST)
    m = (np.asarray(img, np.float32) >= 128).astype(np.float32)
    return torch.from_numpy(m if known_is_white else 1 - m)[None, None]
