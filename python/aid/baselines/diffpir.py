"""DiffPIR (Zhu et al. 2023) for inpainting in σ form: the data proximal step on D,
x̂0 = D + w·m⊙(y − D) with w = g/(1+ρ), ρ = λ·σ_n²/σ², then
x' = x̂0 + σ'·(√(1−ζ)·ε̂ + √ζ·z): a DDIM step with η = √ζ. Defaults (repo): 20 steps,
λ = 1, ζ = 1, σ_n = 1e-3, guidance scale g = 1."""
from __future__ import annotations

import math

import torch

import aid_ext
from aid.baselines.common import start


def diffpir(net, y, mask, seeds, num_steps=20, lam=1.0, zeta=1.0, sigma_n=1e-3, g=1.0):
    run, x = start(net, y, mask, seeds, num_steps)
    eta = torch.full((run.B,), math.sqrt(zeta), device=x.device)
    for i in range(num_steps):
        s = run.sigma(i)
        w = g / (1 + lam * sigma_n**2 / s**2)
        x = aid_ext.edm_ddim_step(x, run.denoise(x, i), s, run.sigma(i + 1), eta, z=run.noise(), mask=run.mask,
                                  y=run.y, dc_weight=w)
    return run.paste(x), run.report()
