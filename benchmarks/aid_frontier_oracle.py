"""Sharpness against fidelity for AID's exact optimum, on the field oracle: how the terminal weights move it.

    python benchmarks/aid_frontier_oracle.py --out runs/frontier [--res 8] [--steps 9 19] [--samples 4000]

AID's objective Ψ = w_hole‖X_K − x0‖² (hole) + (β/2)∫‖u‖² pulls X_K towards the posterior mean x̄(y) when
w_hole/β is large (blurry: the outputs' spread shrinks), and leaves the backbone's samples alone when it is
small. Here the control is the exact optimum of the projected problem (aid.eval.oracle.ProjectedLQOptimum, a
projecting module's target), rolled out with aid.edm.sample on the 8×8 field oracle with a central 4×4 hole,
for β = 1 and a grid of w_hole. Per point: the hole MSE (fidelity; the posterior mean's is the floor) and the
Fréchet distance between the Gaussian fits of the outputs' holes and of the true images' holes (sharpness: 0
when the outputs are distributed like real images, as exact posterior samples are). Writes OUT/frontier.json,
OUT/frontier.md and OUT/frontier.png.
"""
from __future__ import annotations

import argparse
import json
import os

import torch

from aid.edm import edm_sigmas, sample
from aid.eval.metrics import feature_stats, frechet_distance
from aid.eval.oracle import FieldDenoiser, ProjectedLQOptimum, posterior_mean


def rollout(net, lq, sigmas, x0, mask, scale: float, seed: int) -> torch.Tensor:
    """The projecting sampler with the field scale·u*, image i from seed + i: X_K [N, 1, R, R] (float64)."""
    y = mask * x0

    def guidance(x, s, D, sn):
        k = int((sigmas - s[0]).abs().argmin())
        return scale * lq.control(k, x, y)

    return sample(net, range(seed, seed + len(x0)), num_steps=len(sigmas) - 1, solver="euler", guidance=guidance,
                  mask=mask.expand(len(x0), -1, -1, -1), y=y, dtype=torch.float64, device="cpu")


def point(net, x0, mask, steps: int, w_hole: float, beta: float, seed: int) -> dict:
    sigmas = edm_sigmas(steps, dtype=torch.float64)
    lq = ProjectedLQOptimum(net, sigmas, mask[0], beta=beta, w_hole=w_hole)
    x = rollout(net, lq, sigmas, x0, mask, 1.0, seed)
    hole = (1 - mask).bool().reshape(-1)
    out, real = x.reshape(len(x), -1)[:, hole], x0.reshape(len(x0), -1)[:, hole]
    return dict(steps=steps, w_hole=w_hole, beta=beta, hole_mse=float((out - real).square().mean()),
                fd=frechet_distance(*feature_stats(out), *feature_stats(real)))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--res", type=int, default=8)
    p.add_argument("--steps", nargs="+", type=int, default=[9, 19])
    p.add_argument("--w-hole", nargs="+", type=float, default=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0])
    p.add_argument("--samples", type=int, default=4000)
    a = p.parse_args(argv)
    net = FieldDenoiser(a.res, alpha=1.0)
    mask = torch.ones(1, 1, a.res, a.res, dtype=torch.float64)
    q = a.res // 4
    mask[..., q:a.res - q, q:a.res - q] = 0
    x0 = net.draw(a.samples, torch.Generator().manual_seed(1)).double()
    hole = (1 - mask).bool().reshape(-1)
    xbar = posterior_mean(net, mask.expand(1, -1, -1, -1).reshape(-1).bool(), mask * x0)[:, hole]
    real = x0.reshape(len(x0), -1)[:, hole]
    floor = dict(posterior_mean_mse=float((xbar - real).square().mean()),
                 posterior_mean_fd=frechet_distance(*feature_stats(xbar), *feature_stats(real)))
    points = [point(net, x0, mask, k, w, 1.0, 0) for k in a.steps for w in a.w_hole]
    unguided = [dict(steps=k, **{m: v for m, v in point(net, x0, mask, k, 1.0, 1e12, 0).items()
                                  if m in ("hole_mse", "fd")}) for k in a.steps]  # β → ∞: the zero field
    os.makedirs(a.out, exist_ok=True)
    res = dict(res=a.res, samples=a.samples, floor=floor, unguided=unguided, points=points)
    with open(os.path.join(a.out, "frontier.json"), "w") as f:
        json.dump(res, f, indent=1)
    lines = [f"Field oracle {a.res}×{a.res}, central hole, {a.samples} images; β = 1, exact optimum of the projected "
             f"problem. Posterior mean: hole MSE {floor['posterior_mean_mse']:.4f}, "
             f"FD {floor['posterior_mean_fd']:.4f}.", "", "| K | w_hole | hole MSE | FD |", "|---:|---:|---:|---:|"]
    lines += [f"| {u['steps']} | 0 (unguided: replacement) | {u['hole_mse']:.4f} | {u['fd']:.4f} |" for u in unguided]
    lines += [f"| {r['steps']} | {r['w_hole']:g} | {r['hole_mse']:.4f} | {r['fd']:.4f} |" for r in points]
    with open(os.path.join(a.out, "frontier.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot(res, os.path.join(a.out, "frontier.png"))


def _plot(res: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for k in sorted({r["steps"] for r in res["points"]}):
        rows = [r for r in res["points"] if r["steps"] == k]
        ax.plot([r["hole_mse"] for r in rows], [r["fd"] for r in rows], "o-", label=f"K = {k}")
        for r in rows:
            ax.annotate(f"{r['w_hole']:g}", (r["hole_mse"], r["fd"]), fontsize=7)
        u = next(u for u in res["unguided"] if u["steps"] == k)
        ax.plot(u["hole_mse"], u["fd"], "x", color=ax.lines[-1].get_color())
    fl = res["floor"]
    ax.plot(fl["posterior_mean_mse"], fl["posterior_mean_fd"], "k*", label="posterior mean")
    ax.set_xlabel("hole MSE (fidelity)")
    ax.set_ylabel("FD of the holes to the truth's (sharpness)")
    ax.set_title("AID's exact optimum, β = 1: labels are w_hole; × unguided")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
