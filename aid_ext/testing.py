"""Random inputs for every aid_ext op, shared by the op tests (tests/ops/) and benchmarks/bench_ops.py.

`inputs(name, ...)` returns (args, kwargs) in the op's signature; `variant` picks which
optional arguments are set: "full" (every optional), "bare" (none).
"""
from __future__ import annotations

import torch

OPS = ["edm_scale_input", "edm_denoise", "edm_euler_step", "edm_heun_correct", "edm_ddim_step", "edm_renoise",
       "mask_project"]


def inputs(name: str, shape=(3, 2, 5, 4), dtype=torch.float32, device="cpu", *, variant="full", mask_channels=1,
           channels_last=False, soft_mask=False, scalar_sigma=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    B, C, H, W = shape
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def img():
        return torch.randn(shape, generator=g, dtype=torch.float64).to(device, dtype).contiguous(memory_format=fmt)

    def coef(lo, hi):
        n = 1 if scalar_sigma else B
        return (lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)).to(device).reshape(
            () if scalar_sigma else (B,))

    def mask():
        mc = C if mask_channels == "C" else 1
        m = torch.rand(B, mc, H, W, generator=g, dtype=torch.float64)
        m = m if soft_mask else (m > 0.5).double()
        return m.to(device, dtype)

    full = variant == "full"
    sigma = coef(0.2, 5.0)
    sigma_next = sigma * coef(0.1, 0.9)
    if name == "edm_scale_input":
        return (img(), sigma, 0.5), {}
    if name == "edm_denoise":
        return (img(), img(), sigma, 0.5), ({"u": img()} if full else {})
    if name == "edm_euler_step":
        return (img(), img(), sigma, sigma_next), (dict(u=img(), mask=mask(), y=img(), z=img()) if full else {})
    if name == "edm_heun_correct":
        return (img(), img(), img(), img(), sigma, sigma_next), (
            dict(u=img(), mask=mask(), y=img(), z=img()) if full else {})
    if name == "edm_ddim_step":
        if not full:
            return (img(), img(), sigma, sigma_next, torch.zeros_like(sigma)), {}
        return (img(), img(), sigma, sigma_next, coef(0.0, 1.0)), dict(
            z=img(), mask=mask(), y=img(), dc_weight=coef(0.2, 1.0), g=img(), g_scale=coef(-2.0, 2.0))
    if name == "edm_renoise":
        return (img(), sigma_next, sigma, img()), {}
    if name == "mask_project":
        return (img(), mask(), img(), sigma), ({"z": img()} if full else {})
    raise KeyError(name)
