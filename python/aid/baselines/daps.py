"""DAPS (Zhang et al., CVPR 2025, "Improving Diffusion Inverse Problem Solving with Decoupled Noise
Annealing"), for noiseless inpainting on an EDM backbone. Annealing over σ, decoupled: at each level the
state is mapped to a clean estimate, corrected toward y by Langevin MCMC, and renoised from scratch.

With A = num_steps annealing levels σ_0 > … > σ_{A−1} (the first A of EDM's ρ = 7 grid of A + 1 levels from
σ_max to sigma_min, as DAPS's Scheduler.discretize) and σ_A = 0, level i (σ = σ_i):

    x̂0 = ODE(x; σ → σ_ode)           S = ode_steps Euler steps of dx/dσ = (x − D(x; σ))/σ on the ρ = 7 grid
                                      from σ to σ_ode = ode_sigma_min (x̂0 is x at σ_ode, not denoised again)
    x0 ~ K Langevin steps on  log p(x0 | x, y) = −‖x0 − x̂0‖²/(2σ²) − ‖m⊙(x0 − y)‖²/τ²,  from x0 = x̂0:
         x0 ← x0 + h·(−2m⊙(x0 − y)/τ² + (x̂0 − x0)/σ²) + √(2h)·ξ,  h = lr·(1 − (1 − lr_min_ratio)·i/(A + 1))
    x ← x0 + σ_{i+1}·ξ'

and the output is x0 of the last level with the known pixels pasted. NFE = A·S; no VJP (the likelihood
gradient is analytic for inpainting). The prior term is DAPS's prior_solver "gaussian" (p(x0 | x) ≈ N(x̂0, σ²I)),
the data term cores/mcmc.py's −∇‖m⊙x0 − y‖²/τ² (no ½).

The K Langevin steps are done in closed form. Their target is Gaussian with a diagonal precision, P = 2/τ²
+ 1/σ² on a known pixel and 1/σ² in the hole, so each pixel is an AR(1) chain, x0 ← c + a·(x0 − c) + √(2h)·ξ
with a = 1 − hP, c the target's mean, and after K steps from x̂0

    x0 ~ N(x̂0 + w·m⊙(y − x̂0), v),   w = (1 − a_k^K)·(2/τ²)/P_k,   v = 2h·(1 − a^{2K})/(1 − a²)

(a_k, P_k of the known pixels; v per pixel). This is the distribution of the public chain, exactly, for any
h (also where ULA is unstable, hP > 2, as the public chain is); it costs one draw instead of K. The renoise
ξ' is folded into the same draw (variance v + σ_{i+1}²).

Public defaults (zhangbingliang2019/DAPS: configs/sampler/edm_daps.yaml, configs/task/inpainting.yaml
"pixel", cores/mcmc.py, cores/scheduler.py): DAPS-1K, 200 annealing levels from σ = 100 to 0.1 × 5 ODE
steps to 0.01 (1,000 NFE), K = 100 Langevin steps, lr = 5e-5 (box; 1e-4 for random pixels), τ = 0.01,
lr_min_ratio = 0.01, start x = σ_max·ε (σ_max = 80 here, the backbone's). Here every default is the public one
but ode_steps = 1, re-tuned on EDM's σ grid on the validation split (benchmarks/tune_baselines.py, 32 images,
4 mask kinds, at 9 and 19 NFE): mean hole PSNR 16.11 dB with 1 ODE step per level, 13.86 with 2, 11.65 with the
public 5 (at a fixed cost, more levels beat a longer ODE). So the default run is 200 levels × 1 = 200 NFE;
ode_steps=5 gives DAPS-1K. At ode_steps = 1, lr = 1e-5 or 2e-5 scored within 0.07 dB of 5e-5 (less Langevin
noise in the hole), so the public lr stays.
"""
from __future__ import annotations

import torch

import aid_ext
from aid.baselines.common import start


def ode_sigmas(sigma: torch.Tensor, ode_steps: int, sigma_min: float, rho=7.0) -> torch.Tensor:
    """The S + 1 levels σ = ς_0 > … > ς_S = sigma_min of the x̂0 ODE for a [B] σ: [S + 1, B]."""
    r = torch.linspace(0, 1, ode_steps + 1, dtype=torch.float64, device=sigma.device)[:, None]
    s = sigma.double()[None]
    return (s ** (1 / rho) + r * (sigma_min ** (1 / rho) - s ** (1 / rho))) ** rho


def x0_hat(run, x, sigma, ode_steps: int, sigma_min: float) -> torch.Tensor:
    """The probability-flow ODE from σ down to sigma_min, S Euler steps (S NFE)."""
    grid = ode_sigmas(sigma, ode_steps, sigma_min).to(x.dtype)
    for s, sn in zip(grid[:-1], grid[1:]):
        run.nfe += 1
        x, _ = aid_ext.edm_euler_step(x, run.net(x, s), s, sn)
    return x


def langevin(h: float, P: torch.Tensor, K: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(a^K, v) of K steps x ← c + a·(x − c) + √(2h)·ξ, a = 1 − hP, from a fixed start: what is left of
    the start's distance to c, and the variance gathered, 2h·Σ_{j<K} a^{2j}."""
    a2 = (1 - h * P) ** 2
    geometric = torch.where((1 - a2).abs() < 1e-12, torch.full_like(a2, K), (1 - a2**K) / (1 - a2))
    return (1 - h * P) ** K, 2 * h * geometric


def mcmc_coefficients(run, i: int, A: int, K: int, lr, lr_min_ratio, tau):
    """[B] tensors (w, known std, hole std) of level i: x_{i+1} = x̂0 + w·m⊙(y − x̂0) + std·ξ, the K Langevin
    steps and the renoise to σ_{i+1} in one draw."""
    sigma = run.sigma(i).double()
    h = lr * (1 + i / (A + 1) * (lr_min_ratio - 1))
    P_known = 2 / tau**2 + 1 / sigma**2
    aK, v_known = langevin(h, P_known, K)
    _, v_hole = langevin(h, 1 / sigma**2, K)
    renoise = run.sigma(i + 1).double() ** 2
    return (((1 - aK) * 2 / tau**2 / P_known).float(), (v_known + renoise).sqrt().float(),
            (v_hole + renoise).sqrt().float())


@torch.no_grad()
def daps(net, y, mask, seeds, num_steps=200, ode_steps=1, mcmc_steps=100, lr=5e-5, lr_min_ratio=0.01, tau=0.01,
         sigma_min=0.1, ode_sigma_min=0.01):
    if ode_steps < 1 or mcmc_steps < 0 or lr < 0 or tau <= 0 or not 0 < ode_sigma_min < sigma_min:
        raise ValueError(f"daps: need ode_steps >= 1, mcmc_steps >= 0, lr >= 0, tau > 0 and 0 < ode_sigma_min < "
                         f"sigma_min; got {ode_steps}, {mcmc_steps}, {lr}, {tau}, {ode_sigma_min}, {sigma_min}")
    run, x = start(net, y, mask, seeds, num_steps + 1, sigma_min=sigma_min)
    run.sigmas = torch.cat([run.sigmas[:num_steps], torch.zeros_like(run.sigmas[:1])])  # drop σ_A = sigma_min
    zero, one = torch.zeros(run.B, device=x.device), torch.ones(run.B, device=x.device)
    for i in range(num_steps):
        w, sd_known, sd_hole = mcmc_coefficients(run, i, num_steps, mcmc_steps, lr, lr_min_ratio, tau)
        xh = x0_hat(run, x, run.sigma(i), ode_steps, ode_sigma_min)
        xi = run.noise()
        known = aid_ext.edm_ddim_step(xh, xh, one, sd_known, one, z=xi, mask=run.mask, y=run.y, dc_weight=w)
        x = aid_ext.mask_project(aid_ext.edm_renoise(xh, zero, sd_hole, xi), run.mask, known, zero)
    return run.paste(x), run.report()
