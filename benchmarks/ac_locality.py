"""Is a local (convolutional) actor or critic enough on the field oracle? The exact optimum, cut to a radius.

    python benchmarks/ac_locality.py [--res 16 32] [--mask center_box]

The optimal field u*_k is linear, u*_k = e·Mx_k + y·My_k (e = X_k − μ, row vectors; aid.eval.oracle.LQOptimum).
An actor whose receptive field has Chebyshev radius r can at best use pixels within r of each output pixel:
`actor r` rolls out u* with Mx and My cut to that band. A pixel-sum critic Σ_p g_p² with g of radius r has a
quadratic part eᵀSe of band 2r: `critic r` rolls out the one-step lookahead policy (the default actor update)
through the exact value with S_{k+1} cut to band 2r (the terminal Ψ stays exact). Both report the optimality
gap (J − J*)/(J(0) − J*) over 512 field draws with fixed start noise: near 0 means the radius is not what
holds training back. (conv_in, `depth` FiLM blocks and the output conv are 3×3: radius depth + 2.)
"""
from __future__ import annotations

import argparse

import torch

from aid.data.masks import make_mask
from aid.edm import edm_sigmas
from aid.eval.oracle import FieldDenoiser, LQOptimum


def chebyshev(res: int) -> torch.Tensor:
    """[d, d] Chebyshev distances between pixels (not wrapped: masks are not periodic)."""
    i, j = torch.meshgrid(torch.arange(res), torch.arange(res), indexing="ij")
    i, j = i.reshape(-1), j.reshape(-1)
    return torch.maximum((i[:, None] - i[None]).abs(), (j[:, None] - j[None]).abs())


def rollout_cost(lq: LQOptimum, X0, x0, policy) -> float:
    """Mean cost of the linear guided Euler rollout e' = A_k e + Δr_k u, u = policy(k, e)."""
    e, cost = X0 - lq.net.mu, torch.zeros(X0.shape[0], dtype=torch.float64)
    for k, A in enumerate(lq.A):
        dr = lq.sigmas[k] - lq.sigmas[k + 1]
        u = policy(k, e)
        cost += 0.5 * lq.beta * u.square().sum(1) * dr
        e = e @ A.T + dr * u
    return float((cost + (e + lq.net.mu - x0).square().sum(1)).mean())


def study(res: int, mask_kind: str, radii) -> list[str]:
    net, sigmas = FieldDenoiser(res), edm_sigmas(5, dtype=torch.float64)
    mask = torch.from_numpy(make_mask(mask_kind, res, 0))[None]
    lq, d, B = LQOptimum(net, sigmas, mask), res * res, 512
    x0 = net.draw(B, torch.Generator().manual_seed(10_000)).double().reshape(B, d)
    y = x0 * mask.reshape(1, -1)
    X0 = sigmas[0] * torch.randn(B, d, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    eye, dist = torch.eye(d, dtype=torch.float64), chebyshev(res)
    s_of_y = lq.linear_terms(eye.reshape(d, 1, res, res))  # rows: unit y pixels
    s_batch = lq.linear_terms(y.reshape(B, 1, res, res))
    Mx = [-(A.T @ lq.S[k + 1]) @ lq.gain_inv[k] for k, A in enumerate(lq.A)]
    My = [s_of_y[k + 1] @ lq.gain_inv[k] for k in range(len(lq.A))]

    def actor(r):
        band = (dist <= r).double() if r is not None else 1.0
        return lambda k, e: e @ (Mx[k] * band) + y @ (My[k] * band)

    def critic(r):
        def policy(k, e):
            dr, last = lq.sigmas[k] - lq.sigmas[k + 1], k == len(lq.A) - 1
            S = lq.S[k + 1] if last else lq.S[k + 1] * (dist <= 2 * r).double()
            return -((e @ lq.A[k].T) @ S - s_batch[k + 1]) @ torch.linalg.inv(lq.beta / 2 * eye + dr * S)
        return policy

    J0 = rollout_cost(lq, X0, x0, lambda k, e: torch.zeros_like(e))
    Js = rollout_cost(lq, X0, x0, actor(None))
    gap = lambda J: (J - Js) / (J0 - Js)  # noqa: E731
    return [f"| {d} | {mask_kind} | {r} | {gap(rollout_cost(lq, X0, x0, actor(r))):.3f} | "
            f"{gap(rollout_cost(lq, X0, x0, critic(r))):.3f} |" for r in radii]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--res", type=int, nargs="+", default=[16, 32])
    p.add_argument("--mask", default="center_box")
    p.add_argument("--radii", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8])
    a = p.parse_args(argv)
    print("| d | mask | radius r | gap, actor cut to r | gap, critic cut to r |\n|---:|---|---:|---:|---:|")
    for res in a.res:
        print("\n".join(study(res, a.mask, a.radii)))


if __name__ == "__main__":
    main()
