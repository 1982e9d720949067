"""Issue 24's oracle check of the image recipe's kind of module: a multi-scale, step-aware actor trained with the
known pixels projected every step, on the 8×8 Gaussian field oracle with a central 4×4 hole, on K ∈ {5, 9} at once
(one actor, one critic, one pair of optimizers, as aid.guidance.train does), and its gap to the exact optimum J*
of the projected problem (ProjectedLQOptimum) on each grid. tests/guidance/test_aid_oracle.py asserts it;
benchmarks/field_fit.py compares critics and a denoising warm start with it."""
from __future__ import annotations

from dataclasses import replace

import torch

from aid.data.masks import center_box
from aid.eval.oracle import FieldDenoiser, ProjectedLQOptimum
from aid.guidance.actor_critic import ACConfig, AIDTrainer, share_optimizers
from aid.guidance.denoise import DenoisingTrainer
from aid.guidance.networks import Critic, GuidanceModule

STEPS = (5, 9)


def fit_projected_field(iters: int = 400, seed: int = 0, report_at=(), warm_iters: int = 0,
                        **critic_kwargs) -> dict[int, dict[int, float]]:
    """Train for `iters` iterations (K alternating 5, 9; the cosine decay stopped half-way, measured better than at
    its end) and return the relative gaps J/J* − 1 per K at iteration 0, at each of report_at and at iters.
    warm_iters > 0 first trains the actor alone for so many iterations with the denoising objective
    (DenoisingTrainer, batch 64, its rate decayed to 0), so iteration 0 is the warm start."""
    net, mask1 = FieldDenoiser(8, alpha=1.0), torch.from_numpy(center_box(8))[None, None]
    torch.manual_seed(seed)
    actor = GuidanceModule(1, width=16, depth=1, levels=2, emb=16, step_aware=True, project=True)
    critic = Critic(1, **{"width": 16, "emb": 16, "levels": 1, "step_aware": True, **critic_kwargs})
    cfg = ACConfig(lr_decay_iters=2 * iters)
    trainers = share_optimizers({k: AIDTrainer(net, actor, critic, replace(cfg, num_steps=k)) for k in STEPS})
    x_eval = net.draw(512, torch.Generator().manual_seed(10_000))
    m_eval, m_train = mask1.expand(512, -1, -1, -1), mask1.expand(32, -1, -1, -1)
    J_star = {k: ProjectedLQOptimum(net, trainers[k].sigmas.double(), mask1[0]).optimal_cost(x_eval.double())
              for k in STEPS}

    def gaps():
        return {k: trainers[k].evaluate(x_eval, m_eval, torch.Generator().manual_seed(7)) / J_star[k] - 1
                for k in STEPS}

    g = torch.Generator().manual_seed(1 + seed)
    if warm_iters:
        warm_start_by_denoising(net, actor, critic, mask1, warm_iters, g)
    out = {0: gaps()}
    for it in range(iters):
        k = STEPS[it % len(STEPS)]
        trainers[k].iteration = it
        trainers[k].step(net.draw(32, g), m_train, g)
        if it + 1 in report_at or it + 1 == iters:
            out[it + 1] = gaps()
    return out


def warm_start_by_denoising(net, actor, critic, mask1, iters: int, generator: torch.Generator) -> list[float]:
    """`iters` iterations of the denoising objective on the actor (K alternating 5, 9, batch 64, rate 3e-3 decayed
    to 0: its targets are noisy), with an optimizer of its own; returns each iteration's loss."""
    cfg = ACConfig(lr_actor=3e-3, grad_clip=1.0, lr_decay_iters=iters)
    warm = share_optimizers({k: DenoisingTrainer(net, actor, critic, replace(cfg, num_steps=k)) for k in STEPS})
    losses = []
    for it in range(iters):
        k = STEPS[it % len(STEPS)]
        warm[k].iteration = it  # one count for the learning-rate schedule, as train_aid's trainers share
        losses.append(warm[k].step(net.draw(64, generator), mask1.expand(64, -1, -1, -1), generator)["denoise_loss"])
    return losses
