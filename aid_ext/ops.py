"""Typed wrappers of torch.ops.aid_ext.*, with their fake (meta) kernels and autograd.

Shapes: images x, denoised, F, u, y, z, g are [B, C, H, W]; mask is [B, 1, H, W] or
[B, C, H, W], 1 = known, values in [0, 1]; sigma, sigma_next, eta, dc_weight, g_scale are
[B] tensors (or one element shared by the batch). All image arguments share x's dtype
(float64/32/16, bfloat16) and device; 16-bit types are computed in float32. Outputs are
channels_last when x is, contiguous otherwise. Gradients flow to every image argument
except mask; sigma-like coefficients get none.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .reference import c_in, c_out, c_skip, per_sample

_ops = torch.ops.aid_ext


def edm_scale_input(x: Tensor, sigma: Tensor, sigma_data: float = 0.5) -> Tensor:
    """c_in(σ)·x = x / √(σ² + σ_data²): the backbone's input scaling."""
    return _ops.edm_scale_input.default(x, sigma, sigma_data)


def edm_denoise(x: Tensor, F: Tensor, sigma: Tensor, sigma_data: float = 0.5, u: Tensor | None = None) -> Tensor:
    """D = c_skip(σ)·x + c_out(σ)·F (+ σ·u): the EDM denoiser from the raw network output F.

    With u, the denoiser itself is guided (DEFT's D − σ·h is u = −h)."""
    return _ops.edm_denoise.default(x, F, sigma, sigma_data, u)


def edm_euler_step(x: Tensor, denoised: Tensor, sigma: Tensor, sigma_next: Tensor, u: Tensor | None = None,
                   mask: Tensor | None = None, y: Tensor | None = None,
                   z: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One guided Euler step of the probability-flow ODE from σ to σ_next.

    d = (x − D)/σ;  x_next = x + (σ_next − σ)·d + (σ − σ_next)·u;  then, with a mask,
    x_next ← m⊙(y + σ_next·z) + (1−m)⊙x_next.  Returns (x_next, d)."""
    return _ops.edm_euler_step.default(x, denoised, sigma, sigma_next, u, mask, y, z)


def edm_heun_correct(x: Tensor, d: Tensor, x_pred: Tensor, denoised_pred: Tensor, sigma: Tensor,
                     sigma_next: Tensor, u: Tensor | None = None, mask: Tensor | None = None,
                     y: Tensor | None = None, z: Tensor | None = None) -> Tensor:
    """Heun's correction: x_pred is the unguided Euler prediction at σ_next, denoised_pred = D(x_pred; σ_next).

    d' = (x_pred − denoised_pred)/σ_next;  x_next = x + (σ_next − σ)·(d + d')/2 + (σ − σ_next)·u,
    then the optional projection. σ_next must be > 0 (skip the correction on the last step)."""
    return _ops.edm_heun_correct.default(x, d, x_pred, denoised_pred, sigma, sigma_next, u, mask, y, z)


def edm_ddim_step(x: Tensor, denoised: Tensor, sigma: Tensor, sigma_next: Tensor, eta: Tensor,
                  z: Tensor | None = None, mask: Tensor | None = None, y: Tensor | None = None,
                  dc_weight: Tensor | None = None, g: Tensor | None = None,
                  g_scale: Tensor | None = None) -> Tensor:
    """DDIM(η) step in σ form with data consistency and additive guidance (DDNM, DiffPIR, ΠGDM, DPS).

    x̂0 = D + w·m⊙(y − D) (with a mask; w = dc_weight, default 1);
    x_next = x̂0 + √(1−η²)·(σ_next/σ)·(x − x̂0) + η·σ_next·z + κ·g  (κ = g_scale, default 1).
    η = 0 without mask and g is exactly the Euler step. z is required where η > 0."""
    return _ops.edm_ddim_step.default(x, denoised, sigma, sigma_next, eta, z, mask, y, dc_weight, g, g_scale)


def edm_renoise(x: Tensor, sigma: Tensor, sigma_next: Tensor, z: Tensor) -> Tensor:
    """x + √(σ_next² − σ²)·z: add noise from level σ up to σ_next ≥ σ (RePaint's undo, EDM's churn)."""
    return _ops.edm_renoise.default(x, sigma, sigma_next, z)


def mask_project(x: Tensor, mask: Tensor, y: Tensor, sigma: Tensor, z: Tensor | None = None) -> Tensor:
    """m⊙(y + σ·z) + (1−m)⊙x: the known pixels replaced by y noised to σ (σ = 0 pastes y)."""
    return _ops.mask_project.default(x, mask, y, sigma, z)


# ---- fake kernels: metadata only, the same output layout rule as the C++ checks ----------

def _empty_like(x: Tensor) -> Tensor:
    cl = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    return torch.empty_like(x, memory_format=torch.channels_last if cl else torch.contiguous_format)


def _same_shape(x: Tensor, *others: Tensor | None) -> None:
    """The fake kernels' version of the C++ checks on image arguments: shape, dtype, device."""
    for t in others:
        if t is not None:
            torch._check_value(t.shape == x.shape,
                               lambda: f"aid_ext: expected shape {tuple(x.shape)}, got {tuple(t.shape)}")
            torch._check_type(t.dtype == x.dtype, lambda: f"aid_ext: expected dtype {x.dtype}, got {t.dtype}")
            torch._check_value(t.device == x.device,
                               lambda: f"aid_ext: argument is on {t.device} but x is on {x.device}")


@torch.library.register_fake("aid_ext::edm_scale_input")
def _(x, sigma, sigma_data):
    return _empty_like(x)


@torch.library.register_fake("aid_ext::edm_denoise")
def _(x, F, sigma, sigma_data, u=None):
    _same_shape(x, F, u)
    return _empty_like(x)


@torch.library.register_fake("aid_ext::edm_euler_step")
def _(x, denoised, sigma, sigma_next, u=None, mask=None, y=None, z=None):
    _same_shape(x, denoised, u, y, z)
    return _empty_like(x), _empty_like(x)


@torch.library.register_fake("aid_ext::edm_heun_correct")
def _(x, d, x_pred, denoised_pred, sigma, sigma_next, u=None, mask=None, y=None, z=None):
    _same_shape(x, d, x_pred, denoised_pred, u, y, z)
    return _empty_like(x)


@torch.library.register_fake("aid_ext::edm_ddim_step")
def _(x, denoised, sigma, sigma_next, eta, z=None, mask=None, y=None, dc_weight=None, g=None, g_scale=None):
    _same_shape(x, denoised, z, y, g)
    return _empty_like(x)


@torch.library.register_fake("aid_ext::edm_renoise")
def _(x, sigma, sigma_next, z):
    _same_shape(x, z)
    return _empty_like(x)


@torch.library.register_fake("aid_ext::mask_project")
def _(x, mask, y, sigma, z=None):
    _same_shape(x, y, z)
    return _empty_like(x)


# ---- autograd: every op is affine in its image arguments, so each gradient is the ------
# incoming gradient times a coefficient (per sample, times m or 1 − m where a mask acts).

def _save(ctx, x: Tensor, mask: Tensor | None = None, **coefs: Tensor | None) -> None:
    """Keep the mask, and the per-sample coefficients as [B, 1, 1, 1] in x's accumulation dtype."""
    ctx.dtype, ctx.mask = x.dtype, mask
    for name, t in coefs.items():
        setattr(ctx, name, None if t is None else per_sample(t, x))


def _grad(ctx, i: int, g: Tensor, coef) -> Tensor | None:
    """g·coef in the accumulation dtype, cast back; None where input i needs no gradient."""
    if i >= len(ctx.needs_input_grad) or not ctx.needs_input_grad[i]:
        return None
    return (g.to(coef.dtype if isinstance(coef, Tensor) else g.dtype) * coef).to(ctx.dtype)


def _keep(mask: Tensor | None, like: Tensor):
    """(m, 1 − m) in like's dtype, or (0, 1) without a mask."""
    if mask is None:
        return 0.0, 1.0
    m = mask.to(like.dtype)
    return m, 1 - m


def _setup_scale_input(ctx, inputs, output):
    x, sigma, sigma_data = inputs
    _save(ctx, x, s=sigma)
    ctx.sigma_data = sigma_data


def _backward_scale_input(ctx, g):
    return _grad(ctx, 0, g, c_in(ctx.s, ctx.sigma_data)), None, None


def _setup_denoise(ctx, inputs, output):
    x, F, sigma, sigma_data, u = inputs
    _save(ctx, x, s=sigma)
    ctx.sigma_data = sigma_data


def _backward_denoise(ctx, g):
    s, sd = ctx.s, ctx.sigma_data
    return (_grad(ctx, 0, g, c_skip(s, sd)), _grad(ctx, 1, g, c_out(s, sd)), None, None, _grad(ctx, 4, g, s))


def _setup_euler(ctx, inputs, output):
    x, denoised, sigma, sigma_next, u, mask, y, z = inputs
    _save(ctx, x, s=sigma, sn=sigma_next, mask=mask)


def _backward_euler(ctx, g_next, g_d):
    s, sn = ctx.s, ctx.sn
    m, k = _keep(ctx.mask, s)
    gx = g_next.to(s.dtype) * k
    gd = g_d.to(s.dtype)
    return (_grad(ctx, 0, gx * (sn / s) + gd / s, 1.0), _grad(ctx, 1, gx * ((s - sn) / s) - gd / s, 1.0), None, None,
            _grad(ctx, 4, gx, s - sn), None, _grad(ctx, 6, g_next, m), _grad(ctx, 7, g_next, m * sn))


def _setup_heun(ctx, inputs, output):
    x, d, x_pred, denoised_pred, sigma, sigma_next, u, mask, y, z = inputs
    _save(ctx, x, s=sigma, sn=sigma_next, mask=mask)


def _backward_heun(ctx, g):
    s, sn = ctx.s, ctx.sn
    m, k = _keep(ctx.mask, s)
    half = k * (sn - s) / 2
    return (_grad(ctx, 0, g, k), _grad(ctx, 1, g, half), _grad(ctx, 2, g, half / sn), _grad(ctx, 3, g, -half / sn),
            None, None, _grad(ctx, 6, g, k * (s - sn)), None, _grad(ctx, 8, g, m), _grad(ctx, 9, g, m * sn))


def _setup_ddim(ctx, inputs, output):
    x, denoised, sigma, sigma_next, eta, z, mask, y, dc_weight, g, g_scale = inputs
    _save(ctx, x, s=sigma, sn=sigma_next, eta=eta, mask=mask, w=dc_weight, kappa=g_scale)


def _backward_ddim(ctx, g):
    s, sn, e = ctx.s, ctx.sn, ctx.eta
    a = (1 - e * e).sqrt() * sn / s
    m, _ = _keep(ctx.mask, s)
    wm = m * (1.0 if ctx.w is None else ctx.w)
    kappa = torch.ones_like(s) if ctx.kappa is None else ctx.kappa
    return (_grad(ctx, 0, g, a), _grad(ctx, 1, g, (1 - a) * (1 - wm)), None, None, None, _grad(ctx, 5, g, e * sn),
            None, _grad(ctx, 7, g, (1 - a) * wm), None, _grad(ctx, 9, g, kappa), None)


def _setup_renoise(ctx, inputs, output):
    x, sigma, sigma_next, z = inputs
    _save(ctx, x, s=sigma, sn=sigma_next)


def _backward_renoise(ctx, g):
    return _grad(ctx, 0, g, 1.0), None, None, _grad(ctx, 3, g, (ctx.sn**2 - ctx.s**2).sqrt())


def _setup_project(ctx, inputs, output):
    x, mask, y, sigma, z = inputs
    _save(ctx, x, s=sigma, mask=mask)


def _backward_project(ctx, g):
    m, k = _keep(ctx.mask, ctx.s)
    return _grad(ctx, 0, g, k), None, _grad(ctx, 2, g, m), None, _grad(ctx, 4, g, m * ctx.s)


for _name, _setup, _backward in [
        ("edm_scale_input", _setup_scale_input, _backward_scale_input),
        ("edm_denoise", _setup_denoise, _backward_denoise),
        ("edm_euler_step", _setup_euler, _backward_euler),
        ("edm_heun_correct", _setup_heun, _backward_heun),
        ("edm_ddim_step", _setup_ddim, _backward_ddim),
        ("edm_renoise", _setup_renoise, _backward_renoise),
        ("mask_project", _setup_project, _backward_project)]:
    torch.library.register_autograd(f"aid_ext::{_name}", _backward, setup_context=_setup)
