"""AID's actor–critic on the linear-Gaussian oracle, against the exact optimum.

    python benchmarks/ac_oracle.py --res 4 --iters 2000 --lr-actor 1e-4 --lr-critic 1e-3 [--json out.json]

Prints J(μ) of the deterministic actor every --every iterations next to J(0) (unguided) and
J* (the Riccati optimum, aid.oracle.LQOptimum), and the optimality gap
(J − J*)/(J(0) − J*): 1 = no better than unguided, 0 = optimal. All J are evaluated on the
same 512 held-out clean images and the same start noise.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from aid.actor_critic import ACConfig, AIDTrainer
from aid.guidance import Critic, GuidanceModule
from aid.oracle import GaussianDenoiser, LQOptimum, random_covariance


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--res", type=int, default=4, help="images are 1×res×res (d = res²)")
    p.add_argument("--steps", type=int, default=5, help="K, Euler steps per rollout")
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr-actor", type=float, default=1e-4)
    p.add_argument("--lr-critic", type=float, default=1e-4)
    p.add_argument("--lam", type=float, default=0.1)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--warmup", type=int, default=0, help="critic-only iterations first")
    p.add_argument("--delta-norm", action="store_true")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--output-scaling", default="none", choices=["none", "inv_sigma"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    a = p.parse_args(argv)
    d, shape = a.res * a.res, (1, a.res, a.res)
    cov = random_covariance(d, seed=a.seed, decay=1.0)
    net = GaussianDenoiser(torch.zeros(d, dtype=torch.float64), cov, shape)
    chol = torch.linalg.cholesky(cov).float()
    draw = lambda n, g: (torch.randn(n, d, generator=g) @ chol.T).reshape(n, *shape)  # noqa: E731
    mask1 = torch.zeros(1, a.res, a.res)
    mask1[..., : a.res // 2] = 1
    cfg = ACConfig(beta=a.beta, lam=a.lam, num_steps=a.steps, lr_actor=a.lr_actor, lr_critic=a.lr_critic,
                   critic_warmup=a.warmup, delta_norm=a.delta_norm)
    torch.manual_seed(a.seed)
    actor = GuidanceModule(1, width=a.width, depth=1, emb=16, output_scaling=a.output_scaling)
    trainer = AIDTrainer(net, actor, Critic(1, width=a.width, emb=16), cfg)
    x_eval = draw(512, torch.Generator().manual_seed(10_000 + a.seed))
    m_eval, m_train = mask1.expand(512, 1, a.res, a.res), mask1.expand(a.batch, 1, a.res, a.res)
    lq = LQOptimum(net, trainer.sigmas.double(), mask1, beta=a.beta)
    J_star = lq.optimal_cost(x_eval)
    J = lambda: trainer.evaluate(x_eval, m_eval, torch.Generator().manual_seed(7))  # noqa: E731
    J0 = J()
    print(f"# d = {d}, K = {a.steps}, J(0) = {J0:.4f}, J* = {J_star:.4f}; {vars(a)}")
    print("| iteration | J(μ) | gap | seconds |\n|---:|---:|---:|---:|")
    rows, g, t0 = [], torch.Generator().manual_seed(a.seed + 1), time.time()
    for it in range(1, a.iters + 1):
        trainer.step(draw(a.batch, g), m_train, g)
        if it % a.every == 0 or it == a.iters:
            j = J()
            rows.append({"iter": it, "J": j, "gap": (j - J_star) / (J0 - J_star), "seconds": time.time() - t0})
            print(f"| {it} | {j:.4f} | {rows[-1]['gap']:.3f} | {rows[-1]['seconds']:.0f} |", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "J0": J0, "J_star": J_star, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
