"""An EDM2 backbone as the `D(x, σ)` that aid's sampler, baselines and AID trainer call:
class labels bound once, and autoguidance (Karras et al. 2024b) D_g = D_gnet + g·(D_net − D_gnet)."""
from __future__ import annotations

import torch
from torch import nn


def one_hot(labels, label_dim: int, device=None) -> torch.Tensor:
    """Class indices [B] → one-hot [B, label_dim] float32."""
    labels = torch.as_tensor(labels, device=device).reshape(-1)
    if labels.dtype.is_floating_point or labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) < label_dim:
        raise ValueError(f"one_hot: labels must be integer class indices in [0, {label_dim}), got {labels.tolist()}")
    return torch.nn.functional.one_hot(labels.long(), label_dim).to(torch.float32)


class Denoiser(nn.Module):
    """D(x; σ) of `net`, optionally autoguided by `gnet` with strength `guidance` (EDM2's
    generate_images.py: gnet's D lerped towards net's D; g = 1 is net alone, one NFE per call;
    g ≠ 1 costs a net and a gnet evaluation per call: `evals_per_call`, which the samplers'
    reports multiply their backbone calls by).

    gnet          the guide: same images as net, and either net's labels or none (label_dim = 0,
                  as in EDM2's guid-{fid,dino} presets, a conditional net guided by an unconditional
                  XS net; its Precond ignores the labels).

    class_labels  one-hot [B, label_dim] or [1, label_dim] (broadcast), bound for every call; set the
                  attribute per batch when the labels change. Required for a conditional net: EDM2's
                  conditional nets were trained without label dropout, so the all-zero label its Precond
                  substitutes is out of distribution.
    """

    def __init__(self, net, gnet=None, guidance: float = 1.0, class_labels: torch.Tensor | None = None):
        super().__init__()
        if gnet is None and guidance != 1.0:
            raise ValueError(f"Denoiser: guidance={guidance} needs a guide network gnet")
        if gnet is not None and ((gnet.img_channels, gnet.img_resolution) != (net.img_channels, net.img_resolution)
                                 or gnet.label_dim not in (0, net.label_dim)):
            raise ValueError(f"Denoiser: gnet must take the same images as net (img_channels, img_resolution "
                             f"{net.img_channels}, {net.img_resolution}; got {gnet.img_channels}, "
                             f"{gnet.img_resolution}) and net's labels or none (label_dim "
                             f"{' or '.join(map(str, sorted({0, net.label_dim})))}, got {gnet.label_dim})")
        self.net, self.gnet, self.guidance = net, gnet, float(guidance)
        self.img_channels, self.img_resolution = net.img_channels, net.img_resolution
        self.label_dim, self.sigma_data = net.label_dim, net.sigma_data
        self.class_labels = class_labels

    @property
    def evals_per_call(self) -> int:
        """Network evaluations one call costs: 2 with autoguidance (net and gnet), else 1."""
        return 1 if self.gnet is None or self.guidance == 1.0 else 2

    def forward(self, x, sigma, class_labels=None):
        labels = self.class_labels if class_labels is None else class_labels
        if self.label_dim and labels is None:
            raise ValueError(f"Denoiser: the backbone is class-conditional (label_dim={self.label_dim}); "
                             "set class_labels (one-hot, see aid.edm2.one_hot)")
        D = self.net(x, sigma, labels)
        if self.gnet is None or self.guidance == 1.0:
            return D
        return self.gnet(x, sigma, labels).lerp(D, self.guidance)
