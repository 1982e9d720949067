"""The FID InceptionV3 (TensorFlow's 2015-12-05 graph as ported by pytorch-fid), in pure torch,
loaded only from a weights file the user supplies: `pt_inception-2015-12-05-6726825d.pth`.

Module and parameter names equal pytorch-fid's `fid_inception_v3()` (torchvision's Inception3
with num_classes = 1008, no aux head, and the FIDInceptionA/C/E_1/E_2 blocks), so that file
loads with strict=True. Features are the 2048-d output of the final average pool.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from aid.core.checkpoint import sha256_of

ENV_VAR = "AID_INCEPTION_WEIGHTS"
OFFICIAL_SHA256_PREFIX = "6726825d"  # torch hub names files <name>-<first hex digits of their sha256>


def load_strict(module: nn.Module, path: str, what: str, drop_prefixes: tuple[str, ...] = ()) -> nn.Module:
    """Load a state-dict file into `module` with torch.load(weights_only=True) and strict=True.

    Keys starting with one of `drop_prefixes` are ignored (e.g. a classifier the metric does not
    use). BatchNorm `num_batches_tracked` counters may be absent (files saved by old torch). Any
    other missing or unexpected key, or a shape mismatch, raises a ValueError that names them."""
    if not os.path.isfile(path):
        raise ValueError(f"{what}: weights file {path!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises KeyError, UnpicklingError, RuntimeError… depending on the damage
        raise ValueError(f"{what}: cannot read {path!r} as a torch file with weights_only=True: "
                         f"{type(e).__name__}: {e}") from e
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{what}: {path!r} is not a state dict (a mapping of names to tensors)")
    state = {k: v for k, v in state.items() if not k.startswith(drop_prefixes)}
    own = module.state_dict()
    for k, v in own.items():
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = v
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    if missing or unexpected:
        raise ValueError(f"{what}: {path!r} does not match the expected architecture; "
                         f"missing keys {_few(missing)}, unexpected keys {_few(unexpected)}")
    wrong = [f"{k}: {list(state[k].shape)} != {list(v.shape)}" for k, v in own.items() if state[k].shape != v.shape]
    if wrong:
        raise ValueError(f"{what}: {path!r} has tensors of the wrong shape (file != expected): {_few(wrong)}")
    module.load_state_dict(state, strict=True)
    return module.eval()


def _few(items: list[str], n: int = 8) -> str:
    return "[]" if not items else f"{items[:n]}" + (f" and {len(items) - n} more" if len(items) > n else "")


class BasicConv2d(nn.Module):
    """conv (no bias) → BatchNorm (eps = 0.001) → ReLU; parameters `conv.*` and `bn.*`."""

    def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_3x3(x):
    """TensorFlow's average pool: the zero padding is not counted in the mean."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35×35 block: 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg pool→1×1 (FIDInceptionA)."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x):
        return torch.cat([self.branch1x1(x),
                          self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(_avg_pool_3x3(x))], 1)


class InceptionB(nn.Module):
    """35×35 → 17×17 reduction: 3×3/2 | 1×1→3×3→3×3/2 | max pool/2."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch3x3(x),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """17×17 block with factorised 7×7 convolutions (FIDInceptionC)."""

    def __init__(self, cin: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        dbl = x
        for i in range(1, 6):
            dbl = getattr(self, f"branch7x7dbl_{i}")(dbl)
        return torch.cat([self.branch1x1(x),
                          self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
                          dbl,
                          self.branch_pool(_avg_pool_3x3(x))], 1)


class InceptionD(nn.Module):
    """17×17 → 8×8 reduction: 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | max pool/2."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """8×8 block with split 1×3 / 3×1 outputs. The pool branch is TF's average pool in Mixed_7b
    (FIDInceptionE_1) and a 3×3 max pool in Mixed_7c (FIDInceptionE_2), as in the TF graph."""

    def __init__(self, cin: int, pool: str):
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = _avg_pool_3x3(x) if self.pool == "avg" else F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat([self.branch1x1(x),
                          self.branch3x3_2a(b3), self.branch3x3_2b(b3),
                          self.branch3x3dbl_3a(dbl), self.branch3x3dbl_3b(dbl),
                          self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """InceptionV3 of the FID: images [N, 1 or 3, H, W] in [-1, 1] → pool features [N, 2048].

    Input handling follows pytorch-fid on images in [0, 1]: clamp to [-1, 1], map to [0, 1],
    resize to 299×299 (bilinear, align_corners=False), map back by 2x − 1; grayscale is repeated
    to 3 channels. No 8-bit quantisation is applied (pytorch-fid usually reads 8-bit PNGs).
    `fc` (1008 classes) exists only so that the weights file loads strictly; it is not used."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, 1008)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"FIDInceptionV3: need images [N, 1 or 3, H, W] in [-1, 1], got {list(images.shape)}")
        x = (images.float().clamp(-1, 1) + 1) / 2
        x = F.interpolate(x.expand(-1, 3, -1, -1), size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, stride=2)))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean(dim=(2, 3))


def resolve_path(path: str | None, env_var: str) -> str | None:
    """`path` if given, else the environment variable `env_var` if set and non-empty, else None."""
    return path or os.environ.get(env_var) or None


def load_fid_inception(path: str | None = None) -> FIDInceptionV3:
    """The FID Inception from `path` (or $AID_INCEPTION_WEIGHTS), in eval mode. Warns when the
    file's sha256 does not start with 6726825d, i.e. is not pytorch-fid's file: its FID cannot
    be compared with published numbers."""
    path = resolve_path(path, ENV_VAR)
    if path is None:
        raise ValueError(f"load_fid_inception: no weights path given and ${ENV_VAR} is not set")
    net = load_strict(FIDInceptionV3(), path, "FID Inception weights")
    if not sha256_of(path).startswith(OFFICIAL_SHA256_PREFIX):
        warnings.warn(f"{path!r} is not pt_inception-2015-12-05-{OFFICIAL_SHA256_PREFIX}.pth (sha256 differs): "
                      "its FID/KID cannot be compared with published numbers", stacklevel=2)
    return net


@torch.no_grad()
def inception_features(images: torch.Tensor, net: FIDInceptionV3, batch: int = 50) -> torch.Tensor:
    """Pool features [N, 2048] of images [N, 1 or 3, H, W] in [-1, 1], in batches, on the images' device."""
    net = net.eval().to(images.device)
    return torch.cat([net(images[i:i + batch]) for i in range(0, images.shape[0], batch)])
