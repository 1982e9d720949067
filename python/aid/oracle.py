"""The linear-Gaussian oracle: data x0 ~ N(μ, Σ) in d = C·H·W dimensions, where the EDM
denoiser is exact, D(x; σ) = μ + Σ(Σ + σ²I)⁻¹(x − μ), and the inpainting posterior is
Gaussian in closed form. Samplers that are exact here must reproduce known moments; the
AID trainer is checked against the optimal control of this problem (AID-METHOD.md §3)."""
from __future__ import annotations

import torch
from torch import nn


def random_covariance(d: int, seed: int = 0, decay: float = 1.0, scale: float = 0.25) -> torch.Tensor:
    """A random SPD covariance with eigenvalues scale·(i+1)^(−decay) in a random basis."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    lam = scale * torch.arange(1, d + 1, dtype=torch.float64) ** (-decay)
    return (Q * lam) @ Q.T


class GaussianDenoiser(nn.Module):
    """Exact EDM denoiser of N(μ, Σ) for images of shape (C, H, W); a drop-in for EDMPrecond."""

    def __init__(self, mu: torch.Tensor, cov: torch.Tensor, shape: tuple[int, int, int]):
        super().__init__()
        C, H, W = shape
        if H != W or mu.numel() != C * H * W or cov.shape != (C * H * W, C * H * W):
            raise ValueError(f"GaussianDenoiser: need square images and μ [d], Σ [d, d] with d = C·H·W; got "
                             f"shape {shape}, μ {list(mu.shape)}, Σ {list(cov.shape)}")
        self.img_channels, self.img_resolution, self.sigma_data = C, H, 0.5
        lam, V = torch.linalg.eigh(cov.double())
        self.register_buffer("mu", mu.double().reshape(-1))
        self.register_buffer("cov", cov.double())
        self.register_buffer("lam", lam.clamp_min(0))
        self.register_buffer("V", V)

    def forward(self, x, sigma, class_labels=None):
        B = x.shape[0]
        s2 = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).reshape(-1, 1) ** 2
        e = (x.double().reshape(B, -1) - self.mu) @ self.V  # coordinates in Σ's eigenbasis
        D = self.mu + (e * self.lam / (self.lam + s2)) @ self.V.T
        return D.reshape(x.shape).to(x.dtype)

    def posterior(self, mask: torch.Tensor, y: torch.Tensor):
        """Mean [d] and covariance [d, d] of x0 | (x0 = y on the known pixels) for one mask [1|C, H, W]."""
        known = mask.expand(self.img_channels, -1, -1).reshape(-1).bool()
        K, Hh = known.nonzero().squeeze(1), (~known).nonzero().squeeze(1)
        S = self.cov
        gain = torch.linalg.solve(S[K][:, K], S[K][:, Hh]).T  # Σ_HK Σ_KK⁻¹
        mean = y.double().reshape(-1).clone()
        mean[Hh] = self.mu[Hh] + gain @ (y.double().reshape(-1)[K] - self.mu[K])
        cov = torch.zeros_like(S)
        cov[Hh[:, None], Hh] = S[Hh][:, Hh] - gain @ S[K][:, Hh]
        return mean, cov


def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample mean [d] and covariance [d, d] of samples [N, ...]."""
    f = x.double().reshape(x.shape[0], -1)
    mu = f.mean(0)
    c = f - mu
    return mu, c.T @ c / (f.shape[0] - 1)
