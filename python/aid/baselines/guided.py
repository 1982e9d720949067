"""Baselines that differentiate through the backbone at sampling time (1 NFE + 1 VJP per step).

DPS (Chung et al. 2023): x' = Euler(x) − ζ·∇ₓ‖m⊙(y − D(x))‖₂ (the un-squared norm, as the
official code). ΠGDM (Song et al. 2023), noiseless: x' = Euler(x) + w·J_Dᵀ m⊙(y − D), the VJP
of ⟨stopgrad(m⊙(y − D)), D⟩. Both step sizes are in EDM's σ units and must be tuned on
EDM's grid (porting DDPM's ζ gives steps ≈ σ² times too large at high σ). The defaults, ζ = 30 and
w = 4, are the best of a sweep on the validation split at 9 and 19 NFE + VJP (ζ = 1 and w = 1 were
4 dB and 1.8 dB worse in mean hole PSNR: benchmarks/tune_baselines.py, docs/notes/results-notebook.md)."""
from __future__ import annotations

import torch

import aid_ext
from aid.baselines.common import start


def gradient_guided(net, y, mask, seeds, num_steps, scale: float, direction):
    """The DDIM(η = 0) step plus scale·∇ₓ direction(D(x), run) at every step (1 NFE + 1 VJP per step),
    then paste. direction(D, run) returns a scalar; run holds y and mask. DPS, ΠGDM and their latent
    versions (aid.latent) differ only in direction and scale."""
    run, x = start(net, y, mask, seeds, num_steps)
    zero = torch.zeros(run.B, device=x.device)
    for i in range(num_steps):
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            D = run.denoise(xg, i)
            (grad,) = torch.autograd.grad(direction(D, run), xg)
        run.vjp += 1
        x = aid_ext.edm_ddim_step(x, D.detach(), run.sigma(i), run.sigma(i + 1), zero, g=grad,
                                  g_scale=torch.full_like(zero, scale))
    return run.paste(x), run.report()


def dps(net, y, mask, seeds, num_steps=100, zeta=30.0):
    """Gradient of ‖m⊙(y − D)‖₂ per image (summed over the batch: images do not interact)."""
    residual_norm = lambda D, run: (run.mask * (run.y - D)).flatten(1).norm(dim=1).sum()  # noqa: E731
    return gradient_guided(net, y, mask, seeds, num_steps, -zeta, residual_norm)


def pigdm(net, y, mask, seeds, num_steps=100, weight=4.0):
    """VJP of the residual through D: ∇ₓ⟨stopgrad(m⊙(y − D)), D⟩ = J_Dᵀ m⊙(y − D)."""
    inner = lambda D, run: (run.mask * (run.y - D)).detach().mul(D).sum()  # noqa: E731
    return gradient_guided(net, y, mask, seeds, num_steps, weight, inner)
