"""The speed–quality benchmark's reports (aid.bench.run): from its results dict, results.md (one
table per mask kind), quality_vs_nfe.png, quality_vs_seconds.png and examples.png."""
from __future__ import annotations

import math
import os

import torch

from aid.bench.settings import ALL_METHODS
from aid.data.images import masked_input
from aid.data.masks import KINDS, benchmark_masks


def key_of(c: dict) -> str:
    """A cell's key in results.json and examples.safetensors."""
    return f"{c['mask']}/{c['method']}/{c['num_steps']}"


def ordered(cells: dict) -> list[dict]:
    """Cells by mask kind, then method, then cost."""
    return sorted(cells.values(), key=lambda c: (KINDS.index(c["mask"]), ALL_METHODS.index(c["method"]), c["cost"]))


def machine_line(m: dict) -> str:
    return f"{m['device']} ({m.get('gpu', m['cpu'])}, torch threads: {m['torch_threads']})"


def run_line(r: dict) -> str:
    """Where a run's timings were taken: its rank 0's machine, and how many processes ran (runs from before
    aid.bench.shard have no count: they were one process)."""
    n = r.get("processes", 1)
    return machine_line(r["machine"]) + (f" × {n} processes" if n > 1 else "")


def processes(c: dict) -> str:
    """How many processes ran a cell's images ("1+2": a run on 1 process, resumed on 2)."""
    return "+".join(map(str, c.get("processes", [1])))


def fmt(v, spec: str) -> str:
    return format(v, spec) if isinstance(v, (int, float)) else "–"


def seam(c: dict) -> str:
    """A cell's seam, ± its standard error where the cell has one (cells measured before it do not)."""
    return fmt(c.get("seam"), ".3f") + (f" ± {c['seam_se']:.3f}" if "seam_se" in c else "")


def summary(cells: list[dict], chosen, title: str, images: int) -> list[str]:
    """A methods × mask kinds table of hole PSNR / FD_fmnist over the cells that chosen(cell) selects (at most one
    per method and mask kind), the best of each column in bold (highest hole PSNR, lowest FD_fmnist); each
    method's cost (NFE + VJP) in its row, and a cell's image count where it is not the benchmark's."""
    kinds = list(dict.fromkeys(c["mask"] for c in cells))
    picked = {(c["method"], c["mask"]): c for c in cells if chosen(c)}

    def best(kind, metric, pick):
        values = [c[metric] for (_, k), c in picked.items() if k == kind and isinstance(c[metric], (int, float))]
        return pick((v for v in values if math.isfinite(v)), default=None)
    top = {k: (best(k, "hole_psnr", max), best(k, "fd_fmnist", min)) for k in kinds}

    def bold(text, is_best):
        return f"**{text}**" if is_best else text

    def entry(c):
        psnr, fd = top[c["mask"]]
        return (bold(f"{c['hole_psnr']:.2f}", c["hole_psnr"] == psnr) + " / "
                + bold(fmt(c["fd_fmnist"], ".3g"), c["fd_fmnist"] == fd and fd is not None)
                + ("" if c["images"] == images else f" ({c['images']} images)"))
    lines = ["", f"| {title} | " + " | ".join(kinds) + " |", "|---|" + "---:|" * len(kinds)]
    for m in dict.fromkeys(c["method"] for c in cells):
        row = [picked.get((m, k)) for k in kinds]
        if any(row):
            costs = "/".join(dict.fromkeys(str(c["cost"]) for c in row if c))
            lines.append(f"| {m} ({costs}) | " + " | ".join(entry(c) if c else "–" for c in row) + " |")
    return lines


def summaries(cells: list[dict], images: int) -> list[str]:
    """Hole PSNR / FD_fmnist at each target cost of the grid, then at each method's default."""
    lines = ["## Summary: hole PSNR (dB) / FD_fmnist, by target cost", "",
             "A method's cost (NFE + VJP) is in brackets: the nearest its step rule reaches to the target. "
             "Bold: the best of the column (highest hole PSNR, lowest FD_fmnist)."]
    for t in sorted({t for c in cells for t in c["targets"]}):
        lines += summary(cells, lambda c, t=t: t in c["targets"], f"method (cost ≈ {t})", images)
    if any(c["default"] for c in cells):
        lines += summary(cells, lambda c: c["default"], "method (its default cost)", images)
    return lines + [""]


def markdown(res: dict) -> str:
    """Summary tables, then one table per mask kind, with the setup and the rules above them."""
    s, cells = res["setup"], ordered(res["cells"])
    lines = ["# Speed–quality benchmark", "", f"Backbone sha256 {s['backbone_sha256'][:16]}…, {s['images']} images "
             f"per cell, FD_fmnist from {s['fd_min_images']} images. How it was measured:", "",
             "```", res["rules"].strip(), "```", ""]
    lines += [f"- run {i}: {r['date']}, {run_line(r)}" for i, r in enumerate(res["runs"])] + [""]
    lines += [f"- **{k}** skipped: {v}" for k, v in res["skipped"].items()]
    lines += summaries(cells, s["images"])
    for kind in dict.fromkeys(c["mask"] for c in cells):
        lines += ["", f"## {kind} (hole: {res['hole_fraction'][kind]:.0%} of the pixels)", "",
                  "| method | NFE (+VJP) | steps | hole PSNR (dB) | PSNR (dB) | SSIM | FD_fmnist | KD_fmnist | "
                  "seam | s/image | processes | images |", "|---|" + "---:|" * 11]
        for c in (c for c in cells if c["mask"] == kind):
            sem = c["hole_psnr_std"] / c["images"] ** 0.5
            lines.append(f"| {c['method']} | {c['nfe']}" + (f" + {c['vjp']}" if c["vjp"] else "") +
                         f" | {c['num_steps']}{' (default)' if c['default'] else ''} | {c['hole_psnr']:.2f} ± "
                         f"{sem:.2f} | {c['psnr']:.2f} | {c['ssim']:.3f} | {fmt(c['fd_fmnist'], '.4g')} | "
                         f"{fmt(c['kd_fmnist'], '.3g')} | {seam(c)} | {c['seconds_per_image']:.4g} | "
                         f"{processes(c)} | {c['images']} |")
    return "\n".join(lines) + "\n"


def shown_settings(res: dict, nfe_shown: int) -> dict:
    """method -> (num_steps, cost): the setting of each method that examples.png shows, the one whose cost is
    nearest to nfe_shown."""
    shown = {}
    for c in ordered(res["cells"]):
        best = shown.get(c["method"])
        if best is None or abs(c["cost"] - nfe_shown) < abs(best[1] - nfe_shown):
            shown[c["method"]] = (c["num_steps"], c["cost"])
    return shown


def shown_cells(res: dict, nfe_shown: int) -> list[dict]:
    """The cells whose first outputs examples.png shows."""
    shown = shown_settings(res, nfe_shown)
    return [c for c in ordered(res["cells"]) if shown[c["method"]][0] == c["num_steps"]]


def write_examples(res: dict, examples: dict, gt: torch.Tensor, path: str, nfe_shown: int) -> None:
    """Rows: the first example images of each mask kind; columns: masked input, each method at the
    setting whose cost is nearest to nfe_shown, ground truth."""
    from aid.eval.plots import image_table  # matplotlib, only when drawing (`aid` starts faster without it)
    cells, shown = ordered(res["cells"]), shown_settings(res, nfe_shown)
    k = res["setup"]["examples"]
    rows, titles = [], []
    for kind in dict.fromkeys(c["mask"] for c in cells):
        m = benchmark_masks(kind, k, gt.shape[-1])
        for i in range(k):
            outs = [examples.get(key_of(dict(mask=kind, method=name, num_steps=n)), torch.zeros(k, *gt.shape[1:]))[i]
                    for name, (n, _) in shown.items()]
            rows.append([masked_input(gt[i], m[i])] + outs + [gt[i]])
            titles.append(f"{kind} #{i}")
    image_table(rows, path, col_titles=["masked input"] + [f"{name}\n{c} NFE+VJP" for name, (_, c) in shown.items()]
                + ["ground truth"], row_titles=titles)


def write_reports(res: dict, examples: dict, gt: torch.Tensor, out: str, nfe_shown: int) -> str:
    """results.md, quality_vs_nfe.png, quality_vs_seconds.png, examples.png (gt: the test images, the
    first ones of which the examples show); returns the Markdown."""
    from aid.eval.plots import curve_panels  # matplotlib, only when drawing (`aid` starts faster without it)
    md = markdown(res)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md)
    cells = ordered(res["cells"])
    ys = [("hole_psnr", "hole PSNR (dB)"), ("fd_fmnist", "FD_fmnist")]
    note = "hollow circle: the method's default setting"
    machines = {run_line(res["runs"][c["run"]]) for c in cells}
    curve_panels(cells, os.path.join(out, "quality_vs_nfe.png"), x="cost", ys=ys, panel="mask", curve="method",
                 xlabel="NFE + VJP per image", title=f"Quality against cost\n({note})", highlight="default")
    curve_panels(cells, os.path.join(out, "quality_vs_seconds.png"), x="seconds_per_image", ys=ys, panel="mask",
                 curve="method", xlabel="seconds per image", highlight="default",
                 title=f"Quality against wall clock on {' / '.join(sorted(machines))}\n({note})")
    if res["setup"]["examples"]:
        write_examples(res, examples, gt, os.path.join(out, "examples.png"), nfe_shown)
    return md
