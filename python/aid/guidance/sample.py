"""Deployment of a trained guidance module (docs/method.md): the EDM sampler with the actor's
deterministic mean μ_φ added as the control u after every step, then (optionally) the known
pixels pasted. Same call signature and report as the baselines in aid.baselines."""
from __future__ import annotations

import math
import os
import time

import torch

import aid_ext
from aid.core.checkpoint import ASSETS, load_module
from aid.core.common import device_of, known_part
from aid.core.nn import n_params
from aid.edm.sampler import nfe, sample
from aid.guidance.actor_critic import ACConfig, eta_of
from aid.guidance.networks import GuidanceModule

# The bundled guidance modules for the bundled backbone (aid.edm.DEFAULT_BACKBONE), one per setting: fidelity (the
# default: the actor–critic's module, near the posterior mean) and sharp (the denoising objective's module, near
# posterior samples: better FD; methods aid_sharp, aid_sharp_ancestral). Absent until trained.
DEFAULT_GUIDANCE = os.path.join(ASSETS, "aid_fmnist32.safetensors")
SHARP_GUIDANCE = os.path.join(ASSETS, "aid_sharp_fmnist32.safetensors")
BUNDLED_GUIDANCE = {"aid": DEFAULT_GUIDANCE, "aid_sharp": SHARP_GUIDANCE}  # aid.methods.module_key -> file


def bundled_guidance(key: str) -> str | None:
    """The bundled module of key (aid or aid_sharp: aid.methods.module_key), or None while it is not there."""
    path = BUNDLED_GUIDANCE[key]
    return path if os.path.exists(path) else None


def load_actor(path: str, device="cpu") -> GuidanceModule:
    """A frozen guidance module from an actor.safetensors written by aid.guidance.train."""
    return load_module(path, GuidanceModule, "GuidanceModule",
                       " (train one with `python -m aid.guidance.train`)").to(device)


def _check(backbone, actor, y, mask, seeds, guidance_scale) -> None:
    if not 0 <= guidance_scale < math.inf:  # also NaN
        raise ValueError(f"sample_aid: guidance_scale must be >= 0 and finite (1 = as trained, 0 = unguided), "
                         f"got {guidance_scale}")
    shape = (backbone.img_channels, backbone.img_resolution, backbone.img_resolution)
    if y.dim() != 4 or tuple(y.shape[1:]) != shape:
        raise ValueError(f"sample_aid: y must be [B, {', '.join(map(str, shape))}] like the backbone's images, "
                         f"got {list(y.shape)}")
    if y.shape[0] == 0:
        raise ValueError(f"sample_aid: need at least one image; y is {list(y.shape)}")
    if mask.dim() != 4 or tuple(mask.shape) != (y.shape[0], 1, *shape[1:]):
        raise ValueError(f"sample_aid: mask must be [{y.shape[0]}, 1, {shape[1]}, {shape[2]}] (1 = known), "
                         f"got {list(mask.shape)}")
    if len(seeds) != y.shape[0]:
        raise ValueError(f"sample_aid: one seed per image: {len(seeds)} seeds for {y.shape[0]} images")
    channels = getattr(actor, "config", {}).get("img_channels", shape[0])
    if channels != shape[0]:
        raise ValueError(f"sample_aid: the guidance module was built for {channels}-channel images, "
                         f"the backbone's have {shape[0]}")


@torch.no_grad()
def sample_aid(backbone, actor, y, mask, seeds, num_steps=ACConfig.num_steps, solver="euler", paste=True,
               guidance_scale=1.0, progress=False, project=True, eta=None, antithetic=False):
    """Inpaint with AID: x_{i+1} = Step_D(x_i) + Δr_i·s·μ_φ(σ_i, x_i; y, m, D), then x̂ = m⊙y + (1−m)⊙x_N.

    backbone  the frozen EDM backbone the actor was trained with.
    actor     a GuidanceModule, or the path of an actor.safetensors (loaded frozen).
    y, mask   [B, C, H, W] and [B, 1, H, W] (1 = known); only m⊙y is read (the hole of y may hold anything).
    num_steps, solver  should be those of training (ACConfig.num_steps, ACConfig.solver).
    project   also set the known pixels to y noised to σ_{i+1} after every step (the default); False is the
              paper's form, the known pixels pasted at the end only. Measured on the validation split, the
              bundled module (trained without it) gains 0.95 dB of mean hole PSNR with it, and its quality no
              longer falls as much with the step count (docs/notes/results-notebook.md); a module trained with it
              (GuidanceModule(project=True)) must be deployed with it.
    eta       DDIM(η) steps instead of Euler (aid.edm.sample); None: the η the module was trained on
              (GuidanceModule(eta=...), 0 for the ODE), which is what it should be deployed with.
    guidance_scale  s, the control's multiplier: 1 is the trained field (the optimum of Ψ + (β/2)∫‖u‖², whose
              Ψ = ‖X_T − x0‖² pulls towards the blurry posterior mean); s < 1 trades fidelity for sharpness,
              roughly like training with β/s (exactly so where the control is weak; s > 1 is not like a lower β,
              docs/method.md); 0 is unguided + paste.
    antithetic  every noise draw negated (aid.edm.sample): the twin of the sample with the same seeds.
    Returns (x [B, C, H, W], report) with report = {nfe, vjp (0), actor_params, seconds}; nfe counts network
    evaluations: backbone calls × the backbone's `evals_per_call` (2 for an autoguided aid.edm2.Denoiser).
    The result is returned as it is, finite or not (the benchmark counts non-finite images; what writes files,
    `aid inpaint`, refuses them, naming the likely cause)."""
    device = device_of(backbone)
    if isinstance(actor, str):
        actor = load_actor(actor, device)
    _check(backbone, actor, y, mask, seeds, guidance_scale)
    t0 = time.perf_counter()
    mask = mask.to(device, torch.float32)
    y = mask * known_part(y.to(device, torch.float32), mask)  # the actor was trained on y = m⊙x0
    guidance = lambda x, s, D, sn: guidance_scale * actor(x, s, y, mask, D, sn)  # noqa: E731
    known = dict(mask=mask, y=y) if project else {}
    eta = eta_of(actor) if eta is None else eta
    x = sample(backbone, seeds, num_steps=num_steps, solver=solver, guidance=guidance, progress=progress, eta=eta,
               antithetic=antithetic, **known)
    if paste:
        x = aid_ext.mask_project(x, mask, y, torch.zeros(x.shape[0], device=device))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    report = {"nfe": nfe(num_steps, solver) * getattr(backbone, "evals_per_call", 1), "vjp": 0,
              "actor_params": n_params(actor), "seconds": time.perf_counter() - t0}
    return x, report
