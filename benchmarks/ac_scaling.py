"""Does AID's actor–critic scale with d? Runs benchmarks/ac_oracle.py on the image-shaped Gaussian
oracle (field, α = 1) at several grid sizes and settings, then writes a table and a plot of the
optimality gap (J − J*)/(J(0) − J*) against iterations.

    python benchmarks/ac_scaling.py --out runs/ac_scaling [--res 8 16 32] [--only NAME ...]
    python benchmarks/ac_scaling.py --out runs/ac_scaling --report-only

Each (setting, res) run is one JSON in --out, skipped when it exists (rerun to resume a sweep).
The settings are named rows; "paper" is docs/method.md as written (likelihood-ratio actor,
pooled critic), the others change one lever at a time from it or from "lookahead".
"""
from __future__ import annotations

import argparse
import glob
import json
import os

import ac_oracle  # beside this script (a script's folder is on sys.path)

BASE = ["--oracle", "field", "--steps", "5", "--every", "250", "--warmup", "100", "--lr-actor", "1e-3",
        "--lr-critic", "3e-3", "--quiet"]
LOOKAHEAD = ["--actor-update", "lookahead", "--critic-head", "pixel_sum", "--critic-x0"]
MC = LOOKAHEAD + ["--critic-trace", "1"]  # = the package's ACConfig defaults
SETTINGS = {
    "paper": [],
    "paper+delta_norm": ["--delta-norm"],
    "paper+pixel_sum": ["--critic-head", "pixel_sum"],
    "lookahead": LOOKAHEAD,
    "lookahead-x0": ["--actor-update", "lookahead", "--critic-head", "pixel_sum"],
    "lookahead-pool": ["--actor-update", "lookahead", "--critic-x0"],
    "lookahead+batch128": LOOKAHEAD + ["--batch", "128"],
    "lookahead+lr_decay": LOOKAHEAD + ["--lr-decay"],
    "paper+lr_decay": ["--lr-decay"],
    "lookahead+unet": LOOKAHEAD + ["--levels", "2"],
    "paper+unet": ["--levels", "2"],
    "lookahead+unet2": LOOKAHEAD + ["--levels", "2", "--critic-levels", "2"],
    "lookahead+trace0.5": LOOKAHEAD + ["--critic-trace", "0.5"],
    "lookahead+mc": MC,
    # the ablations, each one lever away from the package's defaults (lookahead+mc)
    "lookahead+mc-denoised": MC + ["--no-denoised"],
    "lookahead+mc-warmup": MC + ["--warmup", "0"],
    "lookahead+mc+delta_norm": MC + ["--delta-norm"],
    "lookahead+mc+heun": MC + ["--solver", "heun"],
    "lookahead+mc+lam0.01": MC + ["--lam", "0.01"],
    "lookahead+mc+lam1": MC + ["--lam", "1"],
    "lookahead+mc+beta0.5": MC + ["--beta", "0.5"],
    "lookahead+mc+beta2": MC + ["--beta", "2"],
    # the actor's receptive field: conv_in, `depth` FiLM blocks and conv_out are 3×3 convs, radius depth + 2
    "lookahead+mc+depth4": MC + ["--depth", "4"],
    "lookahead+mc+depth4+lr3e-4": MC + ["--depth", "4", "--lr-actor", "3e-4"],
    "lookahead+mc+depth7": MC + ["--depth", "7"],
    "lookahead+mc+critic4": MC + ["--critic-updates", "4"],
    "lookahead+mc+critic4+actor4": MC + ["--critic-updates", "4", "--actor-updates", "4"],
    "lookahead+mc@seed1": MC + ["--seed", "1"],  # the run-to-run spread of the defaults
    "lookahead+mc@seed2": MC + ["--seed", "2"],
    "lookahead+mc+lam1+critic4": MC + ["--lam", "1", "--critic-updates", "4"],
}


def run_all(out: str, res_list, names, iters: int, masks):
    os.makedirs(out, exist_ok=True)
    for res in res_list:
        for mask in masks:
            for name in names:
                path = os.path.join(out, f"{name}_res{res}_{mask}.json")
                if os.path.exists(path):
                    continue
                args = ac_oracle.parser().parse_args(BASE + SETTINGS[name] + ["--res", str(res), "--mask", mask,
                                                                             "--iters", str(iters)])
                result = ac_oracle.run(args) | {"setting": name}
                with open(path + ".tmp", "w") as f:
                    json.dump(result, f, indent=1)
                os.replace(path + ".tmp", path)
                print(f"{name} res {res} {mask}: gap {result['rows'][-1]['gap']:.3f} after {iters} iterations, "
                      f"{result['seconds_per_iter']:.3f} s/iter", flush=True)


def report(out: str) -> str:
    """A Markdown table of every run in --out and a PNG plot (gap against iterations, one panel per mask)."""
    runs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, "*.json")))]
    lines = ["| setting | d | mask | J(0) | J* | gap @250 | @500 | @1000 | final (iters) | s/iter | max RSS MB |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(runs, key=lambda r: (r["args"]["mask"], r["d"], r["setting"])):
        gap = {row["iter"]: row["gap"] for row in r["rows"]}
        cell = lambda it: f"{gap[it]:.3f}" if it in gap else "–"  # noqa: E731
        last = r["rows"][-1]
        lines.append(f"| {r['setting']} | {r['d']} | {r['args']['mask']} | {r['J0']:.2f} | {r['J_star']:.2f} | "
                     f"{cell(250)} | {cell(500)} | {cell(1000)} | {last['gap']:.3f} ({last['iter']}) | "
                     f"{r['seconds_per_iter']:.3f} | {r['max_rss_mb']:.0f} |")
    _plot(runs, os.path.join(out, "gap_vs_iterations.png"))
    return "\n".join(lines)


def _plot(runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    masks = sorted({r["args"]["mask"] for r in runs})
    fig, axes = plt.subplots(1, len(masks), figsize=(8.5 * len(masks), 4.2), squeeze=False)
    settings = sorted({r["setting"] for r in runs})
    ds = sorted({r["d"] for r in runs})
    styles = ["-", "--", ":", "-."]
    for ax, mask in zip(axes[0], masks):
        for r in (r for r in runs if r["args"]["mask"] == mask):
            i = settings.index(r["setting"])
            default = r["setting"] == "lookahead+mc"  # the package's defaults: the reference curve
            ax.plot([0] + [row["iter"] for row in r["rows"]], [1.0] + [row["gap"] for row in r["rows"]],
                    styles[ds.index(r["d"]) % 4], color="black" if default else plt.cm.tab20(i % 20),
                    lw=2.5 if default else 1.2, marker="os^vD<>"[i % 7], ms=3, label=f"{r['setting']}, d={r['d']}")
        ax.axhline(0.1, color="gray", lw=0.8, ls=":")
        ax.set(title=f"field oracle, mask {mask}", xlabel="iteration", ylabel="optimality gap (J−J*)/(J(0)−J*)",
               ylim=(-0.05, 1.6))
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="folder of the run JSONs (not needed with --plot)")
    p.add_argument("--res", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--masks", nargs="+", default=["center_box"])
    p.add_argument("--only", nargs="+", choices=sorted(SETTINGS), default=sorted(SETTINGS))
    p.add_argument("--iters", type=int, default=1000)
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--plot", nargs="+", metavar=("PNG", "JSON"),
                   help="only plot these run JSONs (from here or ac_oracle.py --json; named by file name) into PNG")
    a = p.parse_args(argv)
    if a.plot:
        runs = [json.load(open(f)) | {"setting": os.path.basename(f)[:-5]} for f in a.plot[1:]]
        return _plot(runs, a.plot[0])
    if a.out is None:
        p.error("--out is required (except with --plot)")
    if not a.report_only:
        run_all(a.out, a.res, a.only, a.iters, a.masks)
    print(report(a.out))


if __name__ == "__main__":
    main()
