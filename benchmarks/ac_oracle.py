"""AID's actor–critic on a linear-Gaussian oracle, against the exact optimum.

    python benchmarks/ac_oracle.py --oracle field --res 16 --mask center_box --iters 1000 [--json out.json]

Two oracles (aid.eval.oracle): "dense", a random covariance in d = res² dimensions (the left half
known), and "field", an image-shaped stationary Gaussian field (spectrum ∝ 1/(1+|k|²)^α) with a
mask from aid.data.masks. Prints J(μ) of the deterministic actor every --every iterations next to
J(0) (unguided) and J* (the Riccati optimum, aid.eval.oracle.LQOptimum), and the optimality gap
(J − J*)/(J(0) − J*): 1 = no better than unguided, 0 = optimal. All J are evaluated on the
same held-out clean images and the same start noise. The actor and critic are the ones used
on real images (aid.guidance.networks), trained by aid.guidance.actor_critic.AIDTrainer. This script's defaults
are the paper's loop (likelihood-ratio actor, pooled critic that does not see x0, ART-RL's
learning rates); the package's defaults are the best measured settings (docs/notes/results-notebook.md).
"""
from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from aid.data.masks import make_mask
from aid.edm import edm_sigmas
from aid.eval.oracle import FieldDenoiser, GaussianDenoiser, LQOptimum, random_covariance
from aid.guidance.actor_critic import ACConfig, AIDTrainer
from aid.guidance.networks import Critic, GuidanceModule


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--oracle", default="dense", choices=["dense", "field"])
    p.add_argument("--res", type=int, default=4, help="images are 1×res×res (d = res²)")
    p.add_argument("--alpha", type=float, default=1.0, help="field oracle: spectral decay α")
    p.add_argument("--mask", default="center_box", help="field oracle: an aid.data.masks kind (mask seed 0)")
    p.add_argument("--steps", type=int, default=5, help="K, steps per rollout")
    p.add_argument("--solver", default="euler", choices=["euler", "heun"], help="rollout solver (J* is for it too)")
    p.add_argument("--no-denoised", action="store_true", help="the actor does not see the backbone's D(x; σ)")
    p.add_argument("--critic-updates", type=int, default=1, help="critic steps per rollout batch")
    p.add_argument("--actor-updates", type=int, default=1, help="actor steps per rollout batch")
    p.add_argument("--exact-critic", action="store_true", help="diagnostic: the critic is the exact optimal value")
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--eval-batch", type=int, default=512)
    p.add_argument("--lr-actor", type=float, default=1e-4)
    p.add_argument("--lr-critic", type=float, default=1e-4)
    p.add_argument("--lam", type=float, default=0.1)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--warmup", type=int, default=0, help="critic-only iterations first")
    p.add_argument("--delta-norm", action="store_true")
    p.add_argument("--critic-trace", type=float, default=0.0, help="ℓ of the critic's λ-return (0 = TD(0))")
    p.add_argument("--lr-decay", action="store_true", help="cosine decay of both learning rates over --iters")
    p.add_argument("--actor-update", default="likelihood_ratio", choices=["likelihood_ratio", "lookahead"])
    p.add_argument("--critic-head", default="pool", choices=["pool", "pixel_sum"])
    p.add_argument("--critic-x0", action="store_true", help="the critic also sees the clean image x0")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--depth", type=int, default=1)
    p.add_argument("--levels", type=int, default=0, help="actor U-Net downsamplings")
    p.add_argument("--critic-levels", type=int, default=0, help="critic U-Net downsamplings")
    p.add_argument("--output-scaling", default="none", choices=["none", "inv_sigma"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json")
    return p


def problem(a):
    """(oracle, sampler of clean images draw(n, generator), one mask [1, res, res])."""
    if a.oracle == "field":
        net = FieldDenoiser(a.res, alpha=a.alpha)
        return net, net.draw, torch.from_numpy(make_mask(a.mask, a.res, 0))[None]
    d, shape = a.res * a.res, (1, a.res, a.res)
    cov = random_covariance(d, seed=a.seed, decay=1.0)
    net = GaussianDenoiser(torch.zeros(d, dtype=torch.float64), cov, shape)
    chol = torch.linalg.cholesky(cov).float()
    mask = torch.zeros(1, a.res, a.res)
    mask[..., : a.res // 2] = 1
    return net, lambda n, g: (torch.randn(n, d, generator=g) @ chol.T).reshape(n, *shape), mask


class ExactCritic(torch.nn.Module):
    """A diagnostic critic: the optimal value V_k(e) = eᵀS_k e − 2s_k(y)ᵀe of the Riccati recursion (up to a
    per-image constant, which no actor gradient sees), plus one learned offset so that the critic's own update
    has something to move. With it, the actor's learning is separated from the critic's."""

    def __init__(self, lq: LQOptimum):
        super().__init__()
        self.lq, self.offset = lq, torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, sigma, y, mask, x0=None):
        k = (self.lq.sigmas.float()[None] - sigma[:, None]).abs().argmin(1)  # each row's grid index
        e = x.double().flatten(1) - self.lq.net.mu
        s = self.lq.linear_terms(y)
        v = sum((k == j).double() * (((e @ self.lq.S[j]) * e).sum(1) - 2 * (s[j] * e).sum(1)) for j in k.unique())
        return v.float() + self.offset


def run(a) -> dict:
    """Train once; returns J(0), J*, and the gap at every --every iterations (with time and memory)."""
    net, draw, mask1 = problem(a)
    cfg = ACConfig(beta=a.beta, lam=a.lam, num_steps=a.steps, solver=a.solver, lr_actor=a.lr_actor,
                   lr_critic=a.lr_critic,
                   critic_warmup=a.warmup, delta_norm=a.delta_norm, actor_update=a.actor_update,
                   critic_trace=a.critic_trace, critic_updates=a.critic_updates,
                   actor_updates=a.actor_updates,
                   lr_decay_iters=a.iters if a.lr_decay else 0)
    torch.manual_seed(a.seed)
    actor = GuidanceModule(1, width=a.width, depth=a.depth, levels=a.levels, emb=16, output_scaling=a.output_scaling,
                           use_denoised=not a.no_denoised)
    # the trainer's σ grid (float32, as the rollouts use it), needed before the trainer for the exact critic
    sigmas = edm_sigmas(a.steps, cfg.sigma_min, cfg.sigma_max, cfg.rho, dtype=torch.float32).double()
    lq = LQOptimum(net, sigmas, mask1, beta=a.beta, solver=a.solver)
    critic = ExactCritic(lq) if a.exact_critic else Critic(1, width=a.width, emb=16, head=a.critic_head,
                                                            sees_x0=a.critic_x0, levels=a.critic_levels)
    trainer = AIDTrainer(net, actor, critic, cfg)
    assert torch.equal(trainer.sigmas.double(), sigmas)
    x_eval = draw(a.eval_batch, torch.Generator().manual_seed(10_000 + a.seed))
    m_eval, m_train = (mask1.expand(n, 1, a.res, a.res) for n in (a.eval_batch, a.batch))
    J_star = lq.optimal_cost(x_eval)
    J = lambda: trainer.evaluate(x_eval, m_eval, torch.Generator().manual_seed(7))  # noqa: E731
    J0 = J()
    say = (lambda *_, **__: None) if a.quiet else print
    say(f"# d = {a.res * a.res}, K = {a.steps}, J(0) = {J0:.4f}, J* = {J_star:.4f}; {vars(a)}")
    say("| iteration | J(μ) | gap | seconds |\n|---:|---:|---:|---:|")
    rows, g, train_s = [], torch.Generator().manual_seed(a.seed + 1), 0.0
    for it in range(1, a.iters + 1):
        t = time.time()
        trainer.step(draw(a.batch, g), m_train, g)
        train_s += time.time() - t
        if it % a.every == 0 or it == a.iters:
            j = J()
            rows.append({"iter": it, "J": j, "gap": (j - J_star) / (J0 - J_star), "train_seconds": train_s})
            say(f"| {it} | {j:.4f} | {rows[-1]['gap']:.3f} | {train_s:.0f} |", flush=True)
    return {"args": vars(a), "d": a.res * a.res, "J0": J0, "J_star": J_star, "rows": rows,
            "seconds_per_iter": train_s / a.iters,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None):
    a = parser().parse_args(argv)
    out = run(a)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
