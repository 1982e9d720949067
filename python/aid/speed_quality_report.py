"""The speed–quality benchmark's reports (aid.speed_quality): from its results dict, results.md (one
table per mask kind), quality_vs_nfe.png, quality_vs_seconds.png and examples.png."""
from __future__ import annotations

import os

import torch

from .baselines import METHODS
from .images import masked_input
from .masks import KINDS, benchmark_masks
from .plots import curve_panels, image_table

ALL_METHODS = list(METHODS) + ["aid"]  # every method of the benchmark, in the order of the tables


def key_of(c: dict) -> str:
    """A cell's key in results.json and examples.safetensors."""
    return f"{c['mask']}/{c['method']}/{c['num_steps']}"


def ordered(cells: dict) -> list[dict]:
    """Cells by mask kind, then method, then cost."""
    return sorted(cells.values(), key=lambda c: (KINDS.index(c["mask"]), ALL_METHODS.index(c["method"]), c["cost"]))


def machine_line(m: dict) -> str:
    return f"{m['device']} ({m.get('gpu', m['cpu'])}, torch threads: {m['torch_threads']})"


def fmt(v, spec: str) -> str:
    return format(v, spec) if isinstance(v, (int, float)) else "–"


def markdown(res: dict) -> str:
    """One table per mask kind, with the setup and the rules above them."""
    s, cells = res["setup"], ordered(res["cells"])
    lines = ["# Speed–quality benchmark", "", f"Backbone sha256 {s['backbone_sha256'][:16]}…, {s['images']} images "
             f"per cell, FD_fmnist from {s['fd_min_images']} images. How it was measured:", "",
             "```", res["rules"].strip(), "```", ""]
    lines += [f"- run {i}: {r['date']}, {machine_line(r['machine'])}" for i, r in enumerate(res["runs"])] + [""]
    lines += [f"- **{k}** skipped: {v}" for k, v in res["skipped"].items()]
    for kind in dict.fromkeys(c["mask"] for c in cells):
        lines += ["", f"## {kind} (hole: {res['hole_fraction'][kind]:.0%} of the pixels)", "",
                  "| method | NFE (+VJP) | steps | hole PSNR (dB) | PSNR (dB) | SSIM | FD_fmnist | KD_fmnist | "
                  "s/image | images |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for c in (c for c in cells if c["mask"] == kind):
            sem = c["hole_psnr_std"] / c["images"] ** 0.5
            lines.append(f"| {c['method']} | {c['nfe']}" + (f" + {c['vjp']}" if c["vjp"] else "") +
                         f" | {c['num_steps']}{' (default)' if c['default'] else ''} | {c['hole_psnr']:.2f} ± "
                         f"{sem:.2f} | {c['psnr']:.2f} | {c['ssim']:.3f} | {fmt(c['fd_fmnist'], '.4g')} | "
                         f"{fmt(c['kd_fmnist'], '.3g')} | {c['seconds_per_image']:.4g} | {c['images']} |")
    return "\n".join(lines) + "\n"


def write_examples(res: dict, examples: dict, gt: torch.Tensor, path: str, nfe_shown: int) -> None:
    """Rows: the first example images of each mask kind; columns: masked input, each method at the
    setting whose cost is nearest to nfe_shown, ground truth."""
    cells = ordered(res["cells"])
    shown = {}
    for c in cells:
        best = shown.get(c["method"])
        if best is None or abs(c["cost"] - nfe_shown) < abs(best[1] - nfe_shown):
            shown[c["method"]] = (c["num_steps"], c["cost"])
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
    md = markdown(res)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md)
    cells = ordered(res["cells"])
    ys = [("hole_psnr", "hole PSNR (dB)"), ("fd_fmnist", "FD_fmnist")]
    note = "hollow circle: the method's default setting"
    machines = {machine_line(res["runs"][c["run"]]["machine"]) for c in cells}
    curve_panels(cells, os.path.join(out, "quality_vs_nfe.png"), x="cost", ys=ys, panel="mask", curve="method",
                 xlabel="NFE + VJP per image", title=f"Quality against cost\n({note})", highlight="default")
    curve_panels(cells, os.path.join(out, "quality_vs_seconds.png"), x="seconds_per_image", ys=ys, panel="mask",
                 curve="method", xlabel="seconds per image", highlight="default",
                 title=f"Quality against wall clock on {' / '.join(sorted(machines))}\n({note})")
    if res["setup"]["examples"]:
        write_examples(res, examples, gt, os.path.join(out, "examples.png"), nfe_shown)
    return md
