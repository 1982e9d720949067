"""AID's networks (docs/method.md): the guidance module μ_φ (the actor, the only part
that ships) and the critic V̂_θ.

The actor sees c_in(σ)·x, y, m and (by default) the backbone's D(x; σ), with time entering
as an embedding of c_noise(σ) = ¼ ln σ. It returns u = h, the network's output (option
output_scaling="inv_sigma" returns u = h/σ instead, which makes h a correction to D in image
units, D + σu = D + h). Measured on the linear-Gaussian oracle (benchmarks/ac_oracle.py,
d = 16, K = 5, Adam 1e-4/1e-3, 200 warm-up iterations): with h/σ the actor–critic diverged
(optimality gap 4.0 after 250 iterations: the control energy (β/2)‖h‖²Δr/σ² is ~250‖h‖² at
σ = 0.002, and the weights are shared across σ); with u = h it did not (gap 1.05; with actor
lr 1e-3, 0.85 after 1,000 iterations). The output layer is zero-initialized: training starts
from the unguided backbone.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import aid_ext
from aid.core.nn import FiLMUNet, NoiseEmbedding, ScalarEmbedding, n_params, step_fraction


def _time_embedding(net, sigma, sigma_next):
    """embed(σ), plus step_embed(ln(Δr/σ)) for a step-aware net."""
    t = net.embed(sigma)
    if net.step_embed is None:
        return t
    if sigma_next is None:
        raise ValueError(f"{type(net).__name__}: this module was built with step_aware=True; pass sigma_next")
    return t + net.step_embed(step_fraction(sigma, sigma_next))


def _inputs(x, sigma, y, mask, extras, sigma_data):
    """[c_in(σ)·x, y, m, *extras] (extras: images shaped like x, e.g. D or x0, None left out); the mask is
    broadcast over channels only through its own channel."""
    parts = [aid_ext.edm_scale_input(x, sigma, sigma_data), y, mask.expand(-1, 1, -1, -1)]
    return torch.cat(parts + [e for e in extras if e is not None], dim=1)


class GuidanceModule(nn.Module):
    """The actor μ_φ(σ, x; y, m, D) → u, shaped like x (step-aware: μ_φ(σ, x; y, m, D, σ_next))."""

    def __init__(self,
                 img_channels: int,            # C of the backbone's images.
                 width: int = 32,              # Hidden channels.
                 depth: int = 2,               # FiLM residual blocks at full resolution.
                 levels: int = 0,              # Downsamplings of the U-Net body (FiLMUNet).
                 level_width: int | None = None,  # Channels of the downsampled levels (FiLMUNet; default: width).
                 emb: int = 32,                # Noise-embedding size.
                 use_denoised: bool = True,    # Feed the backbone's D(x; σ) to the actor (spec's default).
                 output_scaling: str = "none", # u = h ("none") or u = h/σ ("inv_sigma"); see the module doc.
                 sigma_data: float = 0.5,      # The backbone's σ_data (for c_in).
                 step_aware: bool = False,     # Also embed the step, ln(Δr/σ) (needs sigma_next): one module
                                               # for several K sees which grid it is on (step_fraction).
                 project: bool = False,        # Trained with the known pixels projected (y noised to
                                               # σ_{k+1}) after every step, as sample_aid deploys by default,
                                               # not only pasted at the end. Not read by forward; the trainer
                                               # reads it (aid.guidance.actor_critic.projects).
                 eta: float = 0.0):            # The dynamics it steers: DDIM(η) steps (0: the ODE's Euler
                                               # steps). Read by the trainer's rollouts and sample_aid.
        super().__init__()
        if output_scaling not in ("none", "inv_sigma"):
            raise ValueError(f"GuidanceModule: output_scaling must be 'none' or 'inv_sigma', got {output_scaling!r}")
        self.config = dict(img_channels=img_channels, width=width, depth=depth, levels=levels, emb=emb,
                           use_denoised=use_denoised, output_scaling=output_scaling, sigma_data=sigma_data)
        if step_aware:  # only then, so that the configs (and files) of modules without it are unchanged
            self.config["step_aware"] = True
        if level_width is not None:
            self.config["level_width"] = level_width
        if project:
            self.config["project"] = True
        if not 0 <= eta <= 1:
            raise ValueError(f"GuidanceModule: eta must be in [0, 1], got {eta}")
        if eta:
            self.config["eta"] = float(eta)
        self.project, self.eta = project, float(eta)
        self.output_scaling = output_scaling
        self.use_denoised, self.sigma_data = use_denoised, sigma_data
        cin = 2 * img_channels + 1 + (img_channels if use_denoised else 0)
        self.embed = NoiseEmbedding(emb)
        self.step_embed = ScalarEmbedding(emb, zero_init=True) if step_aware else None
        self.body = FiLMUNet(cin, width, emb, levels, depth, level_width)
        self.norm_out = nn.GroupNorm(min(8, width // 4), width)
        self.conv_out = nn.Conv2d(width, img_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # u ≡ 0 at initialization: the unguided backbone
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x, sigma, y, mask, denoised=None, sigma_next=None):
        """x, y, denoised: [B, C, H, W]; mask [B, 1, H, W]; sigma, sigma_next (the step's target σ) [B].
        Returns u (shaped like x). sigma_next is read only by a step-aware module."""
        if self.use_denoised and denoised is None:
            raise ValueError("GuidanceModule: this module was built with use_denoised=True; pass denoised=D(x; σ)")
        t = _time_embedding(self, sigma, sigma_next)
        h = self.body(_inputs(x, sigma, y, mask, [denoised if self.use_denoised else None], self.sigma_data), t)
        h = self.conv_out(F.silu(self.norm_out(h)))
        return h / sigma.view(-1, 1, 1, 1).to(h.dtype) if self.output_scaling == "inv_sigma" else h


class Critic(nn.Module):
    """NN_θ(σ, x; y, m) → one scalar per image; the value is V̂ = NN_θ − λ·r (added by the trainer).

    head="pool": features pooled over the image, then an MLP. head="pixel_sum": a sum over pixels
    of g_p² + b_p, where (g, b) are two per-pixel output channels. The cost-to-go of AID's problem
    is a sum over pixels (Ψ is) and, on the linear-Gaussian oracle, a quadratic form eᵀSe with S
    positive semi-definite; Σ_p g_p² with g linear in a local patch is exactly such a form, and the
    sum (not a mean) lets the value grow with d as the cost does. The defaults (pixel_sum, and a
    critic that sees x0) are the best measured on the field oracle (docs/notes/results-notebook.md).

    sees_denoised=True also feeds the backbone's D(x; σ) (free: the rollout computed it). Where the backbone
    takes x is what the cost-to-go measures, and a critic a hundred times smaller than the backbone cannot
    recompute it from x; the trainer supplies D at the states it perturbs to first order (AIDTrainer.critic_out)."""

    def __init__(self, img_channels: int, width: int = 32, emb: int = 32, sigma_data: float = 0.5,
                 head: str = "pixel_sum", sees_x0: bool = True, levels: int = 0, step_aware: bool = False,
                 sees_denoised: bool = False):
        super().__init__()
        if head not in ("pool", "pixel_sum"):
            raise ValueError(f"Critic: head must be 'pool' or 'pixel_sum', got {head!r}")
        self.config = dict(img_channels=img_channels, width=width, emb=emb, sigma_data=sigma_data, head=head,
                           sees_x0=sees_x0, levels=levels)
        if step_aware:  # as in GuidanceModule: the value at σ depends on the grid still ahead
            self.config["step_aware"] = True
        if sees_denoised:  # likewise: older critics' configs are unchanged
            self.config["sees_denoised"] = True
        self.sigma_data, self.head_kind, self.sees_x0, self.sees_denoised = sigma_data, head, sees_x0, sees_denoised
        self.embed = NoiseEmbedding(emb)
        self.step_embed = ScalarEmbedding(emb) if step_aware else None
        self.body = FiLMUNet((2 + sees_x0 + sees_denoised) * img_channels + 1, width, emb, levels)
        if head == "pool":
            self.conv1 = nn.Conv2d(width, width, 3, stride=2, padding=1)
            self.head = nn.Sequential(nn.Linear(width + emb, width), nn.SiLU(), nn.Linear(width, 1))
        else:
            self.head = nn.Conv2d(width, 2, 3, padding=1)

    def forward(self, x, sigma, y, mask, x0=None, sigma_next=None, denoised=None):
        """x0, the clean training image, is read only by a critic built with sees_x0=True (docs/method.md:
        the critic never ships, so it may condition on x0; Ψ does); sigma_next only by a step-aware one;
        denoised (D(x; σ)) only by one built with sees_denoised=True."""
        for flag, value, name in ((self.sees_x0, x0, "x0"), (self.sees_denoised, denoised, "denoised")):
            if flag and value is None:
                raise ValueError(f"Critic: this critic was built with sees_{name}=True; pass {name}")
        t = _time_embedding(self, sigma, sigma_next)
        extras = [x0 if self.sees_x0 else None, denoised if self.sees_denoised else None]
        h = self.body(_inputs(x, sigma, y, mask, extras, self.sigma_data), t)
        if self.head_kind == "pixel_sum":
            g, b = self.head(h).unbind(1)
            return (g.square() + b).sum(dim=(1, 2))
        h = F.silu(self.conv1(F.silu(h))).mean(dim=(2, 3))
        return self.head(torch.cat([h, t], dim=1)).squeeze(1)


def parameter_ratio(module: nn.Module, backbone: nn.Module) -> float:
    """The module's parameter count as a fraction of the backbone's (the spec asks < 1 %)."""
    return n_params(module) / n_params(backbone)
