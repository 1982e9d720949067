"""How far each baseline's samples are from the exact inpainting posterior, on the
linear-Gaussian oracle (aid.eval.oracle), at several NFE.

    python benchmarks/oracle_baselines.py [--samples 4000] [--methods ding daps] [--json out.json]

The data is a correlated Gaussian in d = 1×8×8 (eigenvalues 0.25·(i+1)^-1.5 in a random
basis), the left half of the image is known, and the observation is a draw from the prior.
Errors are over the hole: ‖mean − mean*‖ / ‖mean*‖ and ‖cov − cov*‖_F / ‖cov*‖_F.
Every training-free method runs at each NFE (DEFT needs a trained module and is left out); DING
at num_steps = (NFE + 1)/2, DAPS at NFE/S annealing levels for S = 1 and 5 ODE steps, and once at
the public DAPS-1K (200 levels × 5). DING runs with η = 1 (tuned) and "square" (public).
"""
from __future__ import annotations

import argparse
import json

import torch

from aid.baselines import METHODS, repaint_nfe
from aid.eval.oracle import GaussianDenoiser, moments, random_covariance

SHAPE = (1, 8, 8)
NFES = [5, 9, 19, 35]
AMORTIZED = {"deft"}  # needs a trained module
EXTRA = {"daps": [dict(num_steps=200, ode_steps=5)]}  # the public DAPS-1K


def settings(name: str, nfe: int) -> list[dict]:
    """The method's arguments for a given NFE budget (RePaint: the longest schedule that fits; DING and DAPS:
    at their tuned defaults and at the public setting)."""
    if name == "repaint":
        for n in range(nfe, 1, -1):
            j = max(1, n // 4)
            if repaint_nfe(n, j, 2) <= nfe:
                return [dict(num_steps=n, jump_length=j, jump_n_sample=2)]
        return []
    if name == "ding":  # 2 NFE a step, 1 on the last
        return [dict(num_steps=(nfe + 1) // 2, eta=eta) for eta in (1.0, "square")]
    if name == "daps":  # annealing levels × ODE steps
        return [dict(num_steps=max(1, round(nfe / S)), ode_steps=S) for S in (1, 5)]
    return [dict(num_steps=nfe, **{"dps": dict(zeta=0.5)}.get(name, {}))]


def label(name: str, kw: dict) -> tuple[str, str]:
    """(method, steps) as the table shows them: DING with its η, DAPS as levels × ODE steps."""
    if name == "ding":
        return f"ding (η = {kw['eta']})", str(kw["num_steps"])
    if name == "daps":
        return "daps", f"{kw['num_steps']} × {kw['ode_steps']}"
    return name, str(kw["num_steps"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=4000)
    p.add_argument("--methods", nargs="+", default=[m for m in METHODS if m not in AMORTIZED],
                   choices=[m for m in METHODS if m not in AMORTIZED])
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
    for name in a.methods:
        runs = sorted((kw for nfe in NFES for kw in settings(name, nfe)), key=lambda kw: label(name, kw)[0] +
                      str(kw.get("ode_steps", "")))  # one variant after the other, each by NFE
        for kw in runs + EXTRA.get(name, []):
            x, rep = METHODS[name](net, y.expand(B, *SHAPE).contiguous(), mask.expand(B, 1, 8, 8), list(range(B)),
                                   **kw)
            m, c = moments(x)
            row = dict(method=name, **kw, nfe=rep["nfe"], vjp=rep["vjp"],
                       mean_err=((m[hole] - ms).norm() / ms.norm()).item(),
                       cov_err=((c[hole][:, hole] - cs).norm() / cs.norm()).item())
            rows.append(row)
            print(f"| {' | '.join(label(name, kw))} | {row['nfe']} | {row['vjp']} | {row['mean_err']:.3f} | "
                  f"{row['cov_err']:.3f} |", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
