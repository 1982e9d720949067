"""Critics and a denoising warm start compared on issue 24's field oracle (aid.eval.field_fit: the image
recipe's kind of module, K ∈ {5, 9}, the projected problem's exact optimum J*): the relative gap J/J* − 1 per K,
per seed, at iteration 0 and after each report point.

    python benchmarks/field_fit.py --out runs/field_fit [--seeds 0 1] [--iters 400] [--report-at 200]

Variants: today's critic (sees c_in·x, y, m, x0), one that also sees the backbone's D (Critic(sees_denoised=True)),
and today's critic after a denoising warm start of the actor (300 iterations of DenoisingTrainer; its iteration 0
is the warm-started actor). Writes OUT/field_fit.json and OUT/field_fit.md. About a minute per run on one core.
"""
from __future__ import annotations

import argparse
import json
import os

from aid.eval.field_fit import STEPS, fit_projected_field

VARIANTS = {"sees x, y, m, x0": {}, "also sees D": {"sees_denoised": True},
            "denoising warm start": {"warm_iters": 300}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--iters", type=int, default=400)
    p.add_argument("--report-at", nargs="*", type=int, default=[200])
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    res = {name: {s: fit_projected_field(a.iters, s, tuple(a.report_at), **kw) for s in a.seeds}
           for name, kw in VARIANTS.items()}
    with open(os.path.join(a.out, "field_fit.json"), "w") as f:
        json.dump(res, f, indent=1)
    points = [(s, it) for s in a.seeds for it in [0, *a.report_at, a.iters]]
    lines = ["| variant | " + " | ".join(f"seed {s}, {it} it" for s, it in points) + " |",
             "|---|" + "---|" * len(points)]
    for name, by_seed in res.items():
        cells = [" / ".join(f"{by_seed[s][it][k]:.3f}" for k in STEPS) for s, it in points]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    with open(os.path.join(a.out, "field_fit.md"), "w") as f:
        f.write(f"Gap J/J* − 1 at K = {' / '.join(map(str, STEPS))}\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
