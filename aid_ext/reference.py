"""Pure-PyTorch versions of every aid_ext op: same names, same signatures, same math.

They are the oracle the kernels are tested against, and a backend anyone can read. The
equations are in docs/method.md (EDM's sampler and AID's guided step); images are [B, C, H, W], the mask is
[B, 1, H, W] or [B, C, H, W] with 1 = known, per-sample coefficients are [B] (or one element). 16-bit
inputs are computed in float32 and rounded once at the end, as the kernels do.
"""
from __future__ import annotations

import torch
from torch import Tensor


def acc_dtype(x: Tensor) -> torch.dtype:
    """The accumulation dtype the kernels use for storage dtype x.dtype."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def per_sample(t: Tensor, x: Tensor) -> Tensor:
    """A [B] (or one-element) coefficient as a [B, 1, 1, 1] tensor in x's accumulation dtype."""
    t = t.to(acc_dtype(x))
    return t.reshape(-1, 1, 1, 1) if t.numel() > 1 else t.reshape(())


def c_skip(sigma: Tensor, sigma_data: float) -> Tensor:
    return sigma_data**2 / (sigma**2 + sigma_data**2)


def c_out(sigma: Tensor, sigma_data: float) -> Tensor:
    return sigma * sigma_data / (sigma**2 + sigma_data**2).sqrt()


def c_in(sigma: Tensor, sigma_data: float) -> Tensor:
    return 1 / (sigma**2 + sigma_data**2).sqrt()


def _a(t: Tensor | None, x: Tensor) -> Tensor | None:
    return None if t is None else t.to(acc_dtype(x))


def _project(v: Tensor, mask: Tensor, y: Tensor, s: Tensor, z: Tensor | None) -> Tensor:
    known = y if z is None else y + s * z
    return mask * known + (1 - mask) * v


def edm_scale_input(x: Tensor, sigma: Tensor, sigma_data: float = 0.5) -> Tensor:
    return (c_in(per_sample(sigma, x), sigma_data) * _a(x, x)).to(x.dtype)


def edm_denoise(x: Tensor, F: Tensor, sigma: Tensor, sigma_data: float = 0.5, u: Tensor | None = None) -> Tensor:
    s = per_sample(sigma, x)
    D = c_skip(s, sigma_data) * _a(x, x) + c_out(s, sigma_data) * _a(F, x)
    if u is not None:
        D = D + s * _a(u, x)
    return D.to(x.dtype)


def edm_euler_step(x, denoised, sigma, sigma_next, u=None, mask=None, y=None, z=None) -> tuple[Tensor, Tensor]:
    s, sn = per_sample(sigma, x), per_sample(sigma_next, x)
    xa = _a(x, x)
    d = (xa - _a(denoised, x)) / s
    v = xa + (sn - s) * d
    if u is not None:
        v = v + (s - sn) * _a(u, x)
    if mask is not None:
        v = _project(v, _a(mask, x), _a(y, x), sn, _a(z, x))
    return v.to(x.dtype), d.to(x.dtype)


def edm_heun_correct(x, d, x_pred, denoised_pred, sigma, sigma_next, u=None, mask=None, y=None, z=None) -> Tensor:
    s, sn = per_sample(sigma, x), per_sample(sigma_next, x)
    d_pred = (_a(x_pred, x) - _a(denoised_pred, x)) / sn
    v = _a(x, x) + (sn - s) * (0.5 * (_a(d, x) + d_pred))
    if u is not None:
        v = v + (s - sn) * _a(u, x)
    if mask is not None:
        v = _project(v, _a(mask, x), _a(y, x), sn, _a(z, x))
    return v.to(x.dtype)


def edm_ddim_step(x, denoised, sigma, sigma_next, eta, z=None, mask=None, y=None, dc_weight=None, g=None,
                  g_scale=None) -> Tensor:
    s, sn, e = per_sample(sigma, x), per_sample(sigma_next, x), per_sample(eta, x)
    xa, x0 = _a(x, x), _a(denoised, x)
    if mask is not None:
        w = 1.0 if dc_weight is None else per_sample(dc_weight, x)
        x0 = x0 + w * _a(mask, x) * (_a(y, x) - x0)
    v = x0 + (1 - e * e).sqrt() * (sn / s) * (xa - x0)
    if z is not None:
        v = v + (e * sn) * _a(z, x)
    if g is not None:
        v = v + (1.0 if g_scale is None else per_sample(g_scale, x)) * _a(g, x)
    return v.to(x.dtype)


def edm_renoise(x: Tensor, sigma: Tensor, sigma_next: Tensor, z: Tensor) -> Tensor:
    s, sn = per_sample(sigma, x), per_sample(sigma_next, x)
    return (_a(x, x) + (sn * sn - s * s).sqrt() * _a(z, x)).to(x.dtype)


def mask_project(x: Tensor, mask: Tensor, y: Tensor, sigma: Tensor, z: Tensor | None = None) -> Tensor:
    return _project(_a(x, x), _a(mask, x), _a(y, x), per_sample(sigma, x), _a(z, x)).to(x.dtype)
