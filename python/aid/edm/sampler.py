"""The EDM sampler (Karras et al. 2022, Algorithm 1 without churn) on aid_ext's fused ops,
with optional guidance (AID's control u) and optional per-step mask projection.

Per-sample seeds: every image has its own torch.Generator, so an image depends on its
seed only, not on the batch it was drawn in. No `.item()` inside the loop.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

import aid_ext
from aid.core.common import device_of, generators, known_part, randn_per_sample

# guidance(x, sigma, denoised, sigma_next) -> u, the additive control of docs/method.md (or None).
Guidance = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def edm_sigmas(num_steps: int, sigma_min=0.002, sigma_max=80.0, rho=7.0, device=None,
               dtype=torch.float64) -> torch.Tensor:
    """σ_0 > ... > σ_{N-1} on EDM's ρ-grid, then σ_N = 0: num_steps + 1 values."""
    if num_steps < 1:
        raise ValueError(f"edm_sigmas: num_steps must be >= 1, got {num_steps}")
    if not 0 < sigma_min < sigma_max < math.inf or not rho > 0:
        raise ValueError(f"edm_sigmas: need 0 < sigma_min < sigma_max < inf and rho > 0, got {sigma_min}, "
                         f"{sigma_max}, {rho}")
    i = torch.arange(num_steps, dtype=torch.float64)
    ramp = i / max(num_steps - 1, 1)
    s = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([s, torch.zeros(1, dtype=torch.float64)]).to(device=device, dtype=dtype)


def nfe(num_steps: int, solver: str) -> int:
    """Backbone evaluations per image: N for Euler, 2N − 1 for Heun (no correction on the last step)."""
    return num_steps if solver == "euler" else 2 * num_steps - 1


def control_gain(s, sn, eta=0.0):
    """g, the step's gain on the control, X' = Step_D(X) + g·u: the step taken with the guided denoiser
    D' = D + σ·u in place of D. DDIM(η): g = σ − √(1−η²)·σ', which is σ at η = 1 (x' = D' + σ'·z) and exactly
    Δr = σ − σ' at η = 0 (Euler). So a module's u means one thing, a correction of the denoiser, whatever the
    step it steers: the denoising objective's module deploys with any η (aid.guidance.denoise). eta: a number
    or a tensor broadcastable with s."""
    return s - (1 - eta * eta) ** 0.5 * sn


def guided_step(denoise, x, D, s, sn, u=None, heun=True, mask=None, y=None, z=None, ops=aid_ext, eta=None,
                z_eta=None):
    """One step σ → σ_next: Euler, or Heun (its predictor unguided, D̂ = denoise(x̂, σ_next)),
    then + Δr·u and the optional projection, all in the fused ops (or in `ops`, e.g. aid_ext.reference,
    which has the same functions). Heun needs σ_next > 0. With eta ([B], Euler only) the step is DDIM(η) from
    the guided denoiser D' = D + σ·u with fresh noise z_eta, x' = D' + √(1−η²)(σ'/σ)(x − D') + η·σ'·z_eta
    (η = 0 is the guided Euler step), i.e. DDIM(η) from D + g·u (control_gain), then the projection."""
    if eta is not None:
        x = ops.edm_ddim_step(x, D, s, sn, eta, z=z_eta, g=u, g_scale=None if u is None else control_gain(s, sn, eta))
        return x if mask is None else ops.mask_project(x, mask, y, sn, z)
    if not heun:
        return ops.edm_euler_step(x, D, s, sn, u=u, mask=mask, y=y, z=z)[0]
    x_pred, d = ops.edm_euler_step(x, D, s, sn)
    return ops.edm_heun_correct(x, d, x_pred, denoise(x_pred, sn), s, sn, u=u, mask=mask, y=y, z=z)


def _progress(it, enabled: bool, desc: str):
    if not enabled:
        return it
    from tqdm.auto import tqdm  # optional dependency, only for the progress bar
    return tqdm(it, desc=desc, leave=False)


@torch.no_grad()
def sample(net, seeds: Sequence[int], *, num_steps=18, solver="heun", sigma_min=0.002, sigma_max=80.0, rho=7.0,
           guidance: Guidance | None = None, mask=None, y=None, class_labels=None, device=None, progress=False,
           return_trajectory=False, ops=aid_ext, dtype=torch.float32, eta: float = 0.0, antithetic: bool = False):
    """Draw len(seeds) images with the deterministic EDM sampler (or, with eta > 0, DDIM(η) steps).

    net          an EDMPrecond-like callable D(x, sigma[B]) (frozen backbone).
    guidance     u = guidance(x, sigma, D, sigma_next): added as g·u after each step (AID's control;
                 g = Δr for Euler, control_gain for DDIM(η)).
    mask, y      [B, 1|C, H, W] (1 = known) and the known image: when given, the known pixels
                 are replaced by y noised to σ_{i+1} after every step (replacement / projection),
                 with noise from each image's generator; the last step pastes y exactly. Only m⊙y
                 is read (aid.core.common.known_part): the hole of y may hold anything.
    ops, dtype   the step functions (aid_ext's fused ops, or aid_ext.reference's plain PyTorch) and the
                 dtype of the state.
    eta          > 0 (Euler only): every step is DDIM(η) with fresh noise from each image's generator
                 (guided_step); 1 is DDPM-like ancestral sampling. 0: the probability-flow ODE.
    antithetic   every noise draw negated: the antithetic twin of the sample with the same seeds, as likely as it
                 and anticorrelated with it (aid.methods.mean_of_samples).
    Returns x_N [B, C, H, W] in dtype (and the list of states x_0..x_N if asked).
    """
    if solver not in ("euler", "heun"):
        raise ValueError(f"sample: solver must be 'euler' or 'heun', got {solver!r}")
    if (mask is None) != (y is None):
        raise ValueError("sample: pass both mask and y (the known image), or neither")
    if not 0 <= eta <= 1 or (eta > 0 and solver != "euler"):
        raise ValueError(f"sample: eta must be in [0, 1], and 0 unless solver='euler'; got {eta} with {solver!r}")
    device = torch.device(device) if device is not None else device_of(net)
    shape = (net.img_channels, net.img_resolution, net.img_resolution)
    B = len(seeds)
    if B == 0:
        raise ValueError("sample: need at least one image (one seed per image); got no seeds")
    if y is not None and (y.shape[0] != B or tuple(y.shape[1:]) != shape):
        raise ValueError(f"sample: y must have shape [{B}, {', '.join(map(str, shape))}], got {list(y.shape)}")
    if y is not None:
        y = known_part(y, mask)
    gens = generators(seeds, device)
    sign = -1.0 if antithetic else 1.0
    noise = lambda: sign * randn_per_sample(gens, shape, device, dtype)  # noqa: E731
    sigmas = edm_sigmas(num_steps, sigma_min, sigma_max, rho, device, dtype)
    x = sigmas[0] * noise()
    D_of = lambda x_, s_: net(x_, s_, class_labels=class_labels)  # noqa: E731
    trajectory = [x] if return_trajectory else None
    eta_t = sigmas.new_full((B,), eta) if eta else None
    for i in _progress(range(num_steps), progress, f"EDM {solver} sampling"):
        s, sn = sigmas[i].expand(B), sigmas[i + 1].expand(B)
        D = D_of(x, s)
        u = None if guidance is None else guidance(x, s, D, sn)
        z = None if mask is None else noise()
        heun = solver == "heun" and i < num_steps - 1  # no correction on the last step (σ_N = 0)
        stochastic = dict(eta=eta_t, z_eta=noise()) if eta else {}
        x = guided_step(D_of, x, D, s, sn, u=u, heun=heun, mask=mask, y=y, z=z, ops=ops, **stochastic)
        if return_trajectory:
            trajectory.append(x)
    return (x, trajectory) if return_trajectory else x
