"""Network blocks shared by the small networks trained on a frozen backbone (AID's actor and critic,
DEFT's h-transform): sinusoidal scalar embeddings and a FiLM-conditioned U-Net body."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ScalarEmbedding(nn.Module):
    """SiLU(linear(sinusoidal features of one scalar c per sample)). zero_init: the embedding is ≡ 0 until
    trained (SiLU(0) = 0), so a new input can be added to a trained module without changing its output."""

    def __init__(self, dim: int, freqs: int = 8, zero_init: bool = False):
        super().__init__()
        self.register_buffer("freqs", 2.0 ** torch.arange(freqs, dtype=torch.float32) * math.pi / 8)
        self.linear = nn.Linear(2 * freqs, dim)
        if zero_init:
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        c = c.float()[:, None] * self.freqs
        return F.silu(self.linear(torch.cat([c.sin(), c.cos()], dim=1)))


class NoiseEmbedding(ScalarEmbedding):
    """The embedding of c_noise = ¼ ln σ."""

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        return super().forward(sigma.float().log() / 4)


def step_fraction(sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """ln(Δr/σ) = ln(1 − σ_next/σ) ∈ (−∞, 0]: how much of the remaining noise one step removes (0 on the last
    step, to σ = 0). The same σ is a large step on a 5-step grid and a small one on a 35-step grid."""
    return torch.log1p(-(sigma_next / sigma).float())


class FiLMBlock(nn.Module):
    """x + conv(SiLU(GN(x)·(1 + scale(t)) + shift(t)))."""

    def __init__(self, width: int, emb: int):
        super().__init__()
        self.norm = nn.GroupNorm(min(8, width // 4), width)
        self.film = nn.Linear(emb, 2 * width)
        self.conv = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x, t):
        scale, shift = self.film(t)[:, :, None, None].chunk(2, dim=1)
        return x + self.conv(F.silu(self.norm(x) * (1 + scale) + shift))


class FiLMUNet(nn.Module):
    """A small FiLM-conditioned U-Net body: conv_in and `depth` blocks at full resolution, then
    `levels` stride-2 downsamplings with one block each, and back up with one block per level
    (nearest upsampling, additive skips). levels = 0 is a plain stack of residual blocks; each
    level doubles the receptive field, which a guidance field needs when the hole is wide (the
    optimal control in a hole's centre depends on known pixels far away).

    level_width (default: width) sets the channels of the downsampled levels, so that a fixed parameter
    budget can go to full resolution (where a field for scattered missing pixels is computed) rather than to
    the coarse levels; the last upsampling then maps back to `width` with a 1×1 convolution."""

    def __init__(self, cin: int, width: int, emb: int, levels: int = 0, depth: int = 1,
                 level_width: int | None = None):
        super().__init__()
        lw = level_width or width
        self.conv_in = nn.Conv2d(cin, width, 3, padding=1)
        self.blocks = nn.ModuleList(FiLMBlock(width, emb) for _ in range(depth))
        self.down = nn.ModuleList(nn.Conv2d(width if i == 0 else lw, lw, 3, stride=2, padding=1)
                                  for i in range(levels))
        self.enc = nn.ModuleList(FiLMBlock(lw, emb) for _ in range(levels))
        self.dec = nn.ModuleList(FiLMBlock(lw if i < levels - 1 else width, emb) for i in range(levels))
        self.up_out = nn.Conv2d(lw, width, 1) if levels and lw != width else None

    def forward(self, inputs, t):
        a = self.conv_in(inputs)
        for block in self.blocks:
            a = block(a, t)
        skips = [a]
        for down, block in zip(self.down, self.enc):
            skips.append(block(down(skips[-1]), t))
        a = skips.pop()
        for block in self.dec:
            skip = skips.pop()
            a = F.interpolate(a, size=skip.shape[-2:])
            if not skips and self.up_out is not None:  # back at full resolution: to `width` channels
                a = self.up_out(a)
            a = block(a + skip, t)
        return a


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
