"""The denoising warm start of the guidance module (`aid train --objective denoising`; docs/method.md).

The guided step is the backbone's step with D replaced by the guided denoiser D' = D + σ·u; for Euler,
  X_{k+1} = X_k − Δr_k(X_k − D_k)/σ_k + Δr_k·u_k = X_k − Δr_k(X_k − (D_k + σ_k·u_k))/σ_k,
and DDIM(η) steps take D' the same way (aid.edm.sampler.control_gain), so a module trained by this objective
deploys with any η (sample_aid(eta=...)): the ancestral sampler (η = 1) is measured in docs/notes.
So the actor can also be trained as a correction of a frozen denoiser, by regression, with no rollout and no
critic: noise a training image to a σ of the deployment grid, x = x0 + σ·n, and regress D(x; σ) + σ·μ_φ(σ, x; y, m,
D, σ') on x0 (denoising score matching of the conditional denoiser E[x0 | x, y], whose probability-flow ODE
samples the posterior). Each image costs one backbone call, against K in an actor–critic rollout, and the
gradient reaches the actor directly instead of through a learned critic's ∇V̂. It learns posterior *samples*,
whose hole PSNR falls as K grows; the actor–critic, started from it (`aid train --init-actor`), then optimizes
AID's cost. Measured on the bundled backbone: docs/notes/results-notebook.md, "Issue 24, sixth session".
"""
from __future__ import annotations

import torch

from aid.guidance.actor_critic import AIDTrainer, observed, projects


def edm_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """λ(σ) = (σ² + σ_data²)/(σ·σ_data)², EDM's loss weight: the regression's error in x0 units, so weighted, has
    about unit scale at every σ (the network's output u = h enters D' as σ·h)."""
    return (sigma ** 2 + sigma_data ** 2) / (sigma * sigma_data) ** 2


def sigma_weight(sigma: torch.Tensor, sigma_data: float, gamma: float = 0.0) -> torch.Tensor:
    """λ_γ(σ) = λ(σ)·(σ²/(σ² + σ_data²))^γ: γ = 0 is EDM's λ (every σ of the grid weighs alike in relative terms);
    γ = 1 is 1/σ_data² at every σ, the x0 error itself, whose large-σ steps (where the hole's content is
    decided) outweigh the small ones by the square of their σ."""
    return edm_weight(sigma, sigma_data) * (sigma ** 2 / (sigma ** 2 + sigma_data ** 2)) ** gamma


def denoising_loss(backbone, actor, x0, mask, sigma, sigma_next, generator: torch.Generator, y=None,
                   w_known: float = 0.0, gamma: float = 0.0) -> torch.Tensor:
    """Per image [B]: λ_γ(σ)·Σ_p w_p·(D + σ·μ_φ − x0)_p² (sigma_weight), at x = x0 + σ·n, n ~ N(0, I) from
    generator; w = 1 in the hole and w_known on the known pixels (0 for a projecting actor, whose known pixels are
    overwritten).
    sigma, sigma_next: [B], the step of the grid the image is drawn at (sigma_next for a step-aware actor).
    The backbone is called without grad; the loss has grad into the actor only."""
    s = sigma.view(-1, *[1] * (x0.dim() - 1)).to(x0.dtype)
    x = x0 + s * torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    with torch.no_grad():
        D = backbone(x, sigma)
    u = actor(x, sigma, observed(x0, mask, y), mask, D, sigma_next)
    weight = (1 - mask) + w_known * mask
    err2 = (weight * (D + s * u - x0).square()).flatten(1).sum(1)
    return sigma_weight(sigma.to(err2.dtype), backbone.sigma_data, gamma) * err2


class DenoisingTrainer(AIDTrainer):
    """AIDTrainer with the denoising objective in place of the actor–critic: step() draws each image's step k of
    this trainer's grid uniformly, takes one Adam step of the actor on denoising_loss, and leaves the critic and
    its optimizer untouched (they stay in the run folder, so that its state has one shape for both objectives).
    The learning rate, its decay and the gradient clipping are the actor's (ACConfig.lr_actor, lr_decay_iters,
    grad_clip)."""

    METRICS = ("denoise_loss",)

    def step(self, x0: torch.Tensor, mask: torch.Tensor, generator: torch.Generator, y=None) -> dict:
        self.set_learning_rates()
        k = torch.randint(self.cfg.num_steps, (x0.shape[0],), generator=generator, device=generator.device)
        k = k.to(self.sigmas.device)
        w_known = 0.0 if projects(self.actor) else self.cfg.w_known
        loss = denoising_loss(self.backbone, self.actor, x0, mask, self.sigmas[k], self.sigmas[k + 1], generator, y,
                              w_known, self.cfg.denoise_gamma).mean()
        self.opt_actor.zero_grad(set_to_none=True)
        loss.backward()
        self.clip(self.actor.parameters())
        self.opt_actor.step()
        self.iteration += 1
        return {"iter": self.iteration, "denoise_loss": loss.item()}
