"""DEFT (Denker et al. 2024, "Efficient Fine-Tuning of Diffusion Models by Learning the
Generalised h-transform"), the amortized baseline: a small network h_φ is trained once on
the data and masks, the backbone stays frozen and is only ever called under no_grad.

DEFT's model is ε_c = ε̂(x_t) + h_φ (alexdenker/DEFT, models/classifier_guidance_model.py,
`et = eps1 + eps2`); in EDM's σ form, with D = x − σ·ε̂, the conditional denoiser is

    D_c(x; σ) = D(x; σ) − σ·h_φ(x, D, y, m; σ),

trained with EDM's loss λ(σ)·‖D_c(x0 + σn; σ) − x0‖², ln σ ~ N(−1.2, 1.2²),
λ(σ) = (σ² + σd²)/(σ·σd)² (this equals DEFT's ε-loss ‖n − ε_c‖² times (σ² + σd²)/σd²).
An Euler step with D_c is the fused guided step with u = −h_φ; Heun uses D_c in both slopes.

    python -m aid.baselines.deft --run-dir runs/deft --iters 20000
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

import aid_ext
from aid.baselines.common import start
from aid.core.checkpoint import ASSETS, atomic_write, load_module, non_finite_weights, save_module
from aid.core.common import device_of
from aid.core.nn import FiLMUNet, NoiseEmbedding, n_params
from aid.core.training import run_iterations
from aid.data.masks import KINDS, mask_pool
from aid.edm.sampler import guided_step

KIND = "DEFTHTransform"
BUNDLED_DEFT = os.path.join(ASSETS, "deft_fmnist32.safetensors")  # for the bundled backbone (a baseline)
HOW_TO_TRAIN = ("train one with `python -m aid.baselines.deft --run-dir RUN --iters N` (or aid.baselines.deft."
                "train_deft) and pass h='RUN/h.safetensors'")


class HTransform(nn.Module):
    """h_φ(x, D, y, m; σ), a small U-Net in ε units. Inputs (DEFT's inpainting x_cond, in EDM's
    scaling): c_in(σ)·x, D, y, m and g = m⊙(D − y)/σ. As in DEFT (`use_residual`), g is also added
    to the output through a learned scale s_φ(σ): h = UNet + s_φ(σ)·g, so s_φ = 1 makes D_c
    = m⊙y + (1−m)⊙D on the known pixels. Output layer and s_φ start at zero: h ≡ 0, D_c = D."""

    def __init__(self,
                 img_channels: int,            # C of the backbone's images.
                 width: int = 24,              # Channels at every level.
                 levels: int = 2,              # Stride-2 downsamplings (each level has one FiLM block).
                 emb: int = 32,                # Noise-embedding size.
                 sigma_data: float = 0.5):     # The backbone's σ_data (for c_in).
        super().__init__()
        self.config = dict(img_channels=img_channels, width=width, levels=levels, emb=emb, sigma_data=sigma_data)
        self.sigma_data = sigma_data
        self.embed = NoiseEmbedding(emb)
        self.body = FiLMUNet(4 * img_channels + 1, width, emb, levels)
        self.norm_out = nn.GroupNorm(min(8, width // 4), width)
        self.conv_out = nn.Conv2d(width, img_channels, 3, padding=1)
        self.scale = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, 1))
        for layer in (self.conv_out, self.scale[-1]):  # h ≡ 0 at initialization: the unconditional backbone
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x, sigma, y, mask, denoised):
        """x, y, denoised: [B, C, H, W]; mask [B, 1, H, W]; sigma [B]. Returns h (shaped like x)."""
        t = self.embed(sigma)
        g = mask * (denoised - y) / sigma.view(-1, 1, 1, 1)
        a = self.body(torch.cat([aid_ext.edm_scale_input(x, sigma, self.sigma_data), denoised, y, mask, g], 1), t)
        return self.conv_out(F.silu(self.norm_out(a))) + self.scale(t).view(-1, 1, 1, 1) * g


def h_transform(h, net) -> HTransform:
    """h as a module on net's device: a module as given, or a path to a checkpoint written by train_deft."""
    if h is None:
        raise ValueError(f"deft: needs a trained h-transform network h=<module or .safetensors path>; {HOW_TO_TRAIN}")
    if isinstance(h, (str, os.PathLike)):
        h = load_module(os.fspath(h), HTransform, KIND, missing_hint=f"; {HOW_TO_TRAIN}")
    if not isinstance(h, nn.Module):
        raise TypeError(f"deft: h must be an nn.Module or a checkpoint path, got {type(h).__name__}")
    channels = getattr(h, "config", {}).get("img_channels")
    if channels is not None and channels != net.img_channels:
        raise ValueError(f"deft: h was built for {channels}-channel images, the backbone makes {net.img_channels}")
    return h.to(device_of(net))


@torch.no_grad()
def deft(net, y, mask, seeds, num_steps=100, h=None, solver="euler"):
    """Sample with DEFT's D_c = D − σ·h_φ (default: DEFT's 100 DDIM η = 0 steps, which is Euler),
    then paste the known pixels. NFE counts backbone forwards; h_φ's forwards are not counted."""
    if solver not in ("euler", "heun"):
        raise ValueError(f"deft: solver must be 'euler' or 'heun', got {solver!r}")
    h = h_transform(h, net)
    run, x = start(net, y, mask, seeds, num_steps)

    def D_c(x_, s_):  # DEFT's conditional denoiser
        run.nfe += 1
        D = net(x_, s_)
        return D - s_.view(-1, 1, 1, 1) * h(x_, s_, run.y, run.mask, D)

    for i in range(num_steps):
        s, sn = run.sigma(i), run.sigma(i + 1)
        if solver == "heun" and i < num_steps - 1:
            x = guided_step(D_c, x, D_c(x, s), s, sn)
        else:
            D = run.denoise(x, i)
            x, _ = aid_ext.edm_euler_step(x, D, s, sn, u=-h(x, s, run.y, run.mask, D))
    run.extra["h_params"] = n_params(h)
    return run.paste(x), run.report()


def deft_loss(backbone, h, x0, mask, generator, P_mean=-1.2, P_std=1.2) -> torch.Tensor:
    """λ(σ)·‖D_c(x0 + σn; σ) − x0‖² averaged, y = m⊙x0, the backbone under no_grad."""
    B = x0.shape[0]
    sigma = (torch.randn(B, generator=generator) * P_std + P_mean).exp().to(x0.device)
    n = torch.randn(x0.shape, generator=generator).to(x0.device)
    s, sd = sigma.view(-1, 1, 1, 1), backbone.sigma_data
    x, y = x0 + s * n, mask * x0
    with torch.no_grad():
        D = backbone(x, sigma)
    D_c = D - s * h(x, sigma, y, mask, D)
    return ((s**2 + sd**2) / (s * sd) ** 2 * (D_c - x0).square()).mean()


def train_deft(backbone, data: torch.Tensor, run_dir: str, *, mask_kinds, iters: int, batch: int = 64, lr=1e-3,
               ema=0.999, seed: int = 0, progress=True, max_seconds=None, h_kwargs: dict | None = None,
               ema_start=400, anneal=True, masks_per_kind=2000, snapshot_every=500, log_every=50) -> HTransform:
    """Train h_φ on data [N, C, H, W] in [-1, 1] with masks of the given kinds; resumes from run_dir/state.pt.

    Adam(lr), decayed linearly to 0 over `iters` when anneal (DEFT's lr_annealing); EMA β = ema,
    a copy of the weights for the first ema_start iterations (DEFT: 0.999 after 400). The backbone
    is frozen in place (eval, requires_grad False). Writes run_dir/h.safetensors (the EMA, to
    sample with), run_dir/state.pt (everything needed to resume exactly) and run_dir/log.jsonl.
    Stops after `iters` iterations in total or after max_seconds of this call."""
    C, res = backbone.img_channels, backbone.img_resolution
    if data.dim() != 4 or tuple(data.shape[1:]) != (C, res, res):
        raise ValueError(f"train_deft: data must be [N, {C}, {res}, {res}] like the backbone's images, "
                         f"got {list(data.shape)}")
    if batch < 1 or iters < 0:
        raise ValueError(f"train_deft: need batch >= 1 and iters >= 0, got batch={batch}, iters={iters}")
    backbone = backbone.eval().requires_grad_(False)
    device = device_of(backbone)
    pool = mask_pool(list(mask_kinds), masks_per_kind, res, seed)
    setup = dict(h=dict(img_channels=C, sigma_data=backbone.sigma_data, **(h_kwargs or {})),
                 mask_kinds=list(mask_kinds), batch=batch, lr=lr, ema=ema, seed=seed, ema_start=ema_start,
                 anneal=anneal, masks_per_kind=masks_per_kind)
    with torch.random.fork_rng(devices=[]):  # the initial weights depend on the seed only
        torch.manual_seed(seed)
        h = HTransform(**setup["h"]).to(device).train()
        ema_h = HTransform(**setup["h"]).to(device).eval().requires_grad_(False)
    ema_h.load_state_dict(h.state_dict())
    opt = torch.optim.Adam(h.parameters(), lr=lr, betas=(0.9, 0.999))
    gen = torch.Generator().manual_seed(seed)
    os.makedirs(run_dir, exist_ok=True)
    state_path = os.path.join(run_dir, "state.pt")
    it, seconds = 0, 0.0
    if os.path.exists(state_path):
        s = torch.load(state_path, weights_only=False)  # our own file, written below
        if s["setup"] != setup:
            raise ValueError(f"train_deft: {run_dir} holds a run with a different setup {s['setup']}; "
                             f"use another run_dir")
        h.load_state_dict(s["h"])
        ema_h.load_state_dict(s["ema"])
        opt.load_state_dict(s["opt"])
        gen.set_state(s["gen"])
        it, seconds = s["iter"], s["seconds"]

    def step(done: int) -> torch.Tensor:
        x0 = data[torch.randint(len(data), (batch,), generator=gen)].to(device)
        m = pool[torch.randint(len(pool), (batch,), generator=gen)].to(device)
        for group in opt.param_groups:
            group["lr"] = lr * (1 - done / iters) if anneal else lr
        loss = deft_loss(backbone, h, x0, m, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            beta = ema if done + 1 > ema_start else 0.0
            for p_ema, p in zip(ema_h.parameters(), h.parameters()):
                p_ema.lerp_(p, 1 - beta)
        return loss.detach()

    def snapshot(done: int, seconds: float) -> None:
        bad = non_finite_weights(h) + non_finite_weights(ema_h)
        if bad:  # never replace the last good snapshot with a diverged one
            raise FloatingPointError(f"train_deft: weights not finite after iteration {done} ({bad[0]}): training "
                                     f"diverged; the last snapshot in {run_dir} is kept; start a new run_dir with a "
                                     "lower lr (the setup records lr)")
        extra = {"iter": done, "images": done * batch, "seconds": seconds,
                 "mask_kinds": setup["mask_kinds"], "backbone_params": n_params(backbone)}
        save_module(ema_h, os.path.join(run_dir, "h.safetensors"), KIND, ema_h.config, extra)
        state = {"h": h.state_dict(), "ema": ema_h.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                 "iter": done, "seconds": seconds, "setup": setup}
        atomic_write(state_path, lambda tmp: torch.save(state, tmp))

    run_iterations(step, snapshot, it=it, iters=iters, seconds=seconds, log_path=os.path.join(run_dir, "log.jsonl"),
                   desc="DEFT h-transform training", progress=progress, max_seconds=max_seconds,
                   snapshot_every=snapshot_every, log_every=log_every,
                   on_divergence=f"start a new run_dir with a lower lr (the setup of {run_dir} records lr)")
    return ema_h


def main(argv=None):
    import argparse

    from aid.data.datasets import fashion_mnist
    from aid.edm import DEFAULT_BACKBONE, load
    p = argparse.ArgumentParser(description="Train DEFT's h-transform on a frozen EDM backbone (resumable).")
    p.add_argument("--run-dir", required=True, help="folder for h.safetensors, state.pt, log.jsonl")
    p.add_argument("--iters", type=int, required=True)
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, help="EDM .pkl or .safetensors (default: the bundled one)")
    p.add_argument("--masks", default=",".join(KINDS), help="comma-separated mask kinds (aid.data.masks.KINDS)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--max-seconds", type=float, default=None, help="stop this call after so many seconds")
    a = p.parse_args(argv)
    backbone = load(a.backbone, a.device)
    data, _ = fashion_mnist("train", backbone.img_resolution)
    h = train_deft(backbone, data, a.run_dir, mask_kinds=a.masks.split(","), iters=a.iters, batch=a.batch, lr=a.lr,
                   seed=a.seed, max_seconds=a.max_seconds)
    print(f"h-transform: {n_params(h):,} parameters ({n_params(h) / n_params(backbone):.2%} of the backbone), "
          f"{os.path.join(a.run_dir, 'h.safetensors')}")


if __name__ == "__main__":
    main()
