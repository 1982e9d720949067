"""Training curves of `aid train` runs: `aid curves RUN... --out curves.png`.

Each run's RUN/log.jsonl holds one line per log interval (means over its iterations; aid.guidance.train). A run
over several step counts draws K afresh every iteration, and an iteration's cost grows with K, so a single line is
noisy; every curve is a running mean over `window` lines. The last row is the wall time per iteration, the
throughput to watch when machines or settings change. A row is drawn when some run logs its number: the
actor–critic logs the cost and |δ|, a denoising warm start (`aid train --objective denoising`) its loss.
"""
from __future__ import annotations

import argparse
import json
import math
import os

LOGGED = [("cost", "cost J"), ("td_abs", "|δ|"), ("denoise_loss", "denoising loss")]  # from log.jsonl
ROWS = LOGGED + [("sec_per_iter", "seconds / iteration")]


def read_log(run_dir: str) -> list[dict]:
    """The lines of RUN/log.jsonl, in order; a ValueError naming the run if there are none."""
    path = os.path.join(run_dir, "log.jsonl")
    if not os.path.isfile(path):
        raise ValueError(f"aid curves: {run_dir!r} has no log.jsonl (is it an `aid train` --run-dir?)")
    with open(path) as f:
        lines = [json.loads(s) for s in f if s.strip()]
    if not lines:
        raise ValueError(f"aid curves: {path} is empty (the run has not logged yet)")
    return lines


def running_means(lines: list[dict], window: int) -> list[dict]:
    """Per log line: iter and the means over the last `window` lines up to it of the LOGGED numbers (NaN where
    the run does not log one) and the seconds per iteration (a line's seconds since the line before, over its
    iterations; a resumed call's clock restarts at 0, so a line whose clock went back counts for nothing)."""
    steps = [(b["seconds"] - a["seconds"], b["iter"] - a["iter"]) for a, b in zip([{"iter": 0, "seconds": 0.0}]
                                                                                  + lines, lines)]
    out = []
    for i, line in enumerate(lines):
        w = slice(max(0, i - window + 1), i + 1)
        timed = [(dt, di) for dt, di in steps[w] if dt >= 0 and di > 0]
        out.append({"iter": line["iter"], **{key: _mean([q[key] for q in lines[w] if key in q]) for key, _ in LOGGED},
                    "sec_per_iter": sum(dt for dt, _ in timed) / sum(di for _, di in timed) if timed else float("nan")})
    return out


def _mean(v: list[float]) -> float:
    return sum(v) / len(v) if v else float("nan")


def run_names(run_dirs: list[str]) -> list[str]:
    """Each run's folder name, or its last two path parts where two runs share a folder name."""
    base = [os.path.basename(os.path.normpath(d)) for d in run_dirs]
    return [os.path.join(*os.path.normpath(d).split(os.sep)[-2:]) if base.count(b) > 1 else b
            for d, b in zip(run_dirs, base)]


def plot_curves(run_dirs: list[str], out: str, window: int = 10) -> None:
    """Draw the runs' curves (ROWS) to the PNG `out`, one colour per run."""
    if window < 1:
        raise ValueError(f"aid curves: --window must be >= 1, got {window}")
    from aid.eval.plots import curve_panels  # matplotlib, only when drawing
    records = [dict(r, run=name, panel="training")
               for d, name in zip(run_dirs, run_names(run_dirs)) for r in running_means(read_log(d), window)]
    rows = [(key, label) for key, label in ROWS if any(math.isfinite(r[key]) for r in records)]
    curve_panels(records, out, x="iter", ys=rows, panel="panel", curve="run", xlabel="iteration", logx=False,
                 title=f"running means over {window} log lines")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", nargs="+", metavar="RUN", help="`aid train` run folders (each with a log.jsonl)")
    p.add_argument("--out", default="curves.png", help="the PNG to write [curves.png]")
    p.add_argument("--window", type=int, default=10, help="log lines per running mean [10]")


def run(a) -> None:
    plot_curves(a.run_dirs, a.out, a.window)
    print(f"aid curves: wrote {a.out}")
