"""LPIPS (Zhang et al. 2018), AlexNet backbone, version 0.1, loaded only from files the user
supplies:

- the backbone in torchvision's `alexnet` state-dict format (`features.0.weight`, …; e.g.
  `alexnet-owt-7be5be79.pth`; its `classifier.*` tensors are ignored), path from the argument
  or $AID_LPIPS_BACKBONE;
- the linear heads in the lpips package's v0.1 `alex.pth` format (`lin0.model.1.weight` …
  `lin4.model.1.weight`, each [1, C, 1, 1]), path from the argument or $AID_LPIPS_HEADS.

d(x, y) = Σ_l mean_hw( w_l · (x̂_l − ŷ_l)² ), x̂_l the channel-normalised ReLU activations of
layer l of AlexNet on the input shifted and scaled per channel as lpips v0.1 does.
"""
from __future__ import annotations

import torch
from torch import nn

from aid.eval.fid_inception import load_strict, resolve_path

BACKBONE_ENV_VAR, HEADS_ENV_VAR = "AID_LPIPS_BACKBONE", "AID_LPIPS_HEADS"
CHANNELS = (64, 192, 384, 256, 256)     # AlexNet relu1 … relu5
TAPS = (1, 4, 7, 9, 11)                 # indices in `features` of those ReLUs
MIN_SIZE = 31                           # smaller inputs vanish before relu3 (11×11/4 conv, two 3×3/2 pools)
SHIFT = (-0.030, -0.088, -0.188)        # lpips v0.1 ScalingLayer: x ↦ (x − shift) / scale
SCALE = (0.458, 0.448, 0.450)


class _Head(nn.Module):
    """1×1 conv to one channel, no bias; `model.0` was a Dropout in lpips training (identity here)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))


def _alexnet_features() -> nn.Sequential:
    """torchvision's alexnet().features up to relu5 (indices 0–11; the final max pool is not needed)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU())


class LPIPS(nn.Module):
    """Per-pair distance [B] between images [B, 1 or 3, H ≥ 31, W ≥ 31] in [-1, 1]; grayscale is
    repeated to 3 channels. `features` holds the backbone, `lin0`…`lin4` the heads."""

    def __init__(self):
        super().__init__()
        self.features = _alexnet_features()
        for i, c in enumerate(CHANNELS):
            setattr(self, f"lin{i}", _Head(c))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def _activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x.float().expand(-1, 3, -1, -1) - self.shift) / self.scale
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                taps.append(x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return taps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.dim() != 4 or x.shape[1] not in (1, 3) or min(x.shape[2:]) < MIN_SIZE:
            raise ValueError(f"LPIPS: need x and y of one shape [B, 1 or 3, H >= {MIN_SIZE}, W >= {MIN_SIZE}], "
                             f"got {list(x.shape)} and {list(y.shape)}")
        d = 0
        for i, (a, b) in enumerate(zip(self._activations(x), self._activations(y))):
            d = d + getattr(self, f"lin{i}").model((a - b).square()).mean(dim=(1, 2, 3))
        return d


def load_lpips(backbone: str | None = None, heads: str | None = None) -> LPIPS:
    """LPIPS-alex v0.1 from the two files (or $AID_LPIPS_BACKBONE / $AID_LPIPS_HEADS), strictly
    checked, in eval mode."""
    backbone, heads = resolve_path(backbone, BACKBONE_ENV_VAR), resolve_path(heads, HEADS_ENV_VAR)
    if backbone is None or heads is None:
        raise ValueError(f"load_lpips: need both the AlexNet backbone (${BACKBONE_ENV_VAR}) and the v0.1 heads "
                         f"(${HEADS_ENV_VAR}); got backbone={backbone!r}, heads={heads!r}")
    net = LPIPS()
    load_strict(nn.ModuleDict({"features": net.features}), backbone, "LPIPS AlexNet backbone",
                drop_prefixes=("classifier.",))
    load_strict(nn.ModuleDict({f"lin{i}": getattr(net, f"lin{i}") for i in range(len(CHANNELS))}), heads,
                "LPIPS v0.1 heads")
    return net.eval()


@torch.no_grad()
def lpips_distance(x: torch.Tensor, y: torch.Tensor, net: LPIPS, batch: int = 100) -> torch.Tensor:
    """Per-pair LPIPS [B] of x and y ([B, 1 or 3, H, W] in [-1, 1]), in batches, on x's device."""
    net = net.eval().to(x.device)
    return torch.cat([net(x[i:i + batch], y[i:i + batch]) for i in range(0, x.shape[0], batch)])
