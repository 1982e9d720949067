"""How far each baseline's samples are from the exact inpainting posterior, on the
linear-Gaussian oracle (aid.eval.oracle), at several NFE.

    python benchmarks/oracle_baselines.py [--samples 4000] [--json out.json]

The data is a correlated Gaussian in d = 1×8×8 (eigenvalues 0.25·(i+1)^-1.5 in a random
basis), the left half of the image is known, and the observation is a draw from the prior.
Errors are over the hole: ‖mean − mean*‖ / ‖mean*‖ and ‖cov − cov*‖_F / ‖cov*‖_F.
"""
from __future__ import annotations

import argparse
import json

import torch

from aid.baselines import METHODS, repaint_nfe
from aid.eval.oracle import GaussianDenoiser, moments, random_covariance

SHAPE = (1, 8, 8)
NFES = [5, 9, 19, 35]


def settings(name: str, nfe: int) -> dict | None:
    """The method's arguments for a given NFE budget (RePaint: the longest schedule that fits), or None."""
    if name == "repaint":
        for n in range(nfe, 1, -1):
            j = max(1, n // 4)
            if repaint_nfe(n, j, 2) <= nfe:
                return dict(num_steps=n, jump_length=j, jump_n_sample=2)
        return None
    return dict(num_steps=nfe, **{"dps": dict(zeta=0.5)}.get(name, {}))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=4000)
    p.add_argument("--json")
    a = p.parse_args(argv)
    d = SHAPE[0] * SHAPE[1] * SHAPE[2]
    cov = random_covariance(d, seed=0, decay=1.5)
    net = GaussianDenoiser(torch.zeros(d, dtype=torch.float64), cov, SHAPE)
    y = (torch.linalg.cholesky(cov) @ torch.randn(d, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
    y = y.reshape(SHAPE).float()
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4] = 1
    mean_star, cov_star = net.posterior(mask[0], y)
    hole = ~mask[0].expand(SHAPE).reshape(-1).bool()
    ms, cs = mean_star[hole], cov_star[hole][:, hole]
    B = a.samples
    rows = []
    print("| method | steps | NFE | VJP | mean error | cov error |\n|---|---:|---:|---:|---:|---:|")
    for name, method in METHODS.items():
        for nfe in NFES:
            kw = settings(name, nfe)
            x, rep = method(net, y.expand(B, *SHAPE).contiguous(), mask.expand(B, 1, 8, 8), list(range(B)), **kw)
            m, c = moments(x)
            row = dict(method=name, **kw, nfe=rep["nfe"], vjp=rep["vjp"],
                       mean_err=((m[hole] - ms).norm() / ms.norm()).item(),
                       cov_err=((c[hole][:, hole] - cs).norm() / cs.norm()).item())
            rows.append(row)
            print(f"| {name} | {kw['num_steps']} | {row['nfe']} | {row['vjp']} | {row['mean_err']:.3f} | "
                  f"{row['cov_err']:.3f} |", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
