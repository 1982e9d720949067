"""AID's fidelity–sharpness trade-off: the guidance field scaled at deployment, s·μ_φ.

    python benchmarks/aid_guidance_scale.py --out runs/gs [--scales 0 0.25 0.5 0.75 1] [--nfe 9]
        [--masks center_box half_right] [--images 1000] [--aid PATH] [--reference runs/sq/results.json]

AID's terminal cost Ψ = ‖X_T − x0‖² is minimised by the posterior mean: high hole PSNR, blurry
holes, a poor Fréchet distance. Scaling the trained field by s < 1 at deployment is the cheap
lever (roughly training with β/s: where the control is weak, u*_β ∝ 1/β); s = 0 is the unguided
sampler with the known pixels projected every step, i.e. the replacement baseline (AID's deployment since
2026-12-05; the committed results/aid_guidance_scale/ were made before, in the paper's form, where s = 0 was
unguided sampling + paste). For each mask kind × NFE × s this inpaints the speed–quality benchmark's images
and masks with the same seeds and metrics (aid.bench.run), and writes OUT/scale.json,
OUT/scale.md and OUT/scale.png (hole PSNR against FD_fmnist, one panel per mask kind and NFE; with
--reference, the baselines' cells of a speed_quality results.json at the same NFE and image count
are drawn as points). Resumable: the cells in OUT/scale.json are kept, and the reports cover all
of them (at this --images). A report, not a selection:
these are test images, so no s is chosen here.
"""
from __future__ import annotations

import argparse
import json
import os

from tqdm.auto import tqdm

from aid.bench.report import fmt
from aid.bench.run import RES, cell_metrics, run_cell, write_json
from aid.data.datasets import fashion_mnist
from aid.data.masks import KINDS, benchmark_masks
from aid.edm import DEFAULT_BACKBONE, load
from aid.eval.plots import curve_panels
from aid.guidance.sample import DEFAULT_GUIDANCE, load_actor, sample_aid


def scale_cell(net, actor, gt, mask, nfe: int, s: float, batch: int) -> dict:
    """Metrics of AID at guidance scale s with nfe Euler steps on images gt (image i: seed i)."""
    def sampler(net, y, m, seeds, num_steps):
        return sample_aid(net, actor, y, m, seeds, num_steps=num_steps, guidance_scale=s)
    x, _, seconds = run_cell(sampler, net, gt, mask, list(range(len(gt))), nfe, batch)
    return dict(seconds_per_image=seconds / len(gt), **cell_metrics(x, gt, mask, fd_min=len(gt)))


def reference_points(path: str, panels: set[tuple[str, int]], images: int) -> list[dict]:
    """The baseline cells of a speed_quality results.json in these (mask kind, target cost) panels with the same
    image count."""
    with open(path) as f:
        cells = json.load(f)["cells"].values()
    return [dict(panel=f"{c['mask']}, {t} NFE", curve=c["method"], fd_fmnist=c["fd_fmnist"], hole_psnr=c["hole_psnr"])
            for c in cells for t in c["targets"]
            if (c["mask"], t) in panels and c["images"] == images and c["method"] != "aid"]


def markdown(cells: list[dict]) -> str:
    rows = ["| mask | NFE | s | hole PSNR (dB) | SSIM | FD_fmnist | KD_fmnist | s/image |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in cells:
        rows.append(f"| {c['mask']} | {c['nfe']} | {c['scale']:g} | {fmt(c['hole_psnr'], '.2f')} "
                    f"| {fmt(c['ssim'], '.3f')} "
                    f"| {fmt(c['fd_fmnist'], '.2f')} | {fmt(c['kd_fmnist'], '.2f')} | {c['seconds_per_image']:.4f} |")
    return "\n".join(rows) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--scales", nargs="+", type=float, default=[0.0, 0.25, 0.5, 0.75, 1.0])
    p.add_argument("--nfe", nargs="+", type=int, default=[9])
    p.add_argument("--masks", nargs="+", choices=KINDS, default=["center_box", "half_right"], metavar="KIND")
    p.add_argument("--images", type=int, default=1000, help="test images per cell (FD_fmnist needs many) [1000]")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--aid", default=DEFAULT_GUIDANCE, help="guidance module [the bundled one]")
    p.add_argument("--backbone", default=DEFAULT_BACKBONE)
    p.add_argument("--reference", help="a speed_quality results.json whose baseline cells are drawn as points")
    a = p.parse_args(argv)
    if any(not s >= 0 for s in a.scales):
        p.error(f"--scales must be >= 0, got {a.scales}")
    if a.images < 2:
        p.error(f"--images must be >= 2 (a Fréchet distance needs a covariance), got {a.images}")
    net = load(a.backbone)
    actor = load_actor(a.aid)
    gt = fashion_mnist("test", RES)[0][:a.images]
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "scale.json")
    res = json.load(open(path)) if os.path.exists(path) else dict(aid=a.aid, backbone=a.backbone, cells={})
    if (res["aid"], res["backbone"]) != (a.aid, a.backbone):
        p.error(f"{path} was made with --aid {res['aid']} --backbone {res['backbone']}; choose another --out")
    todo = [(k, n, s) for k in a.masks for n in a.nfe for s in a.scales
            if f"{k}/{n}/{s:g}/{a.images}" not in res["cells"]]
    for k, n, s in tqdm(todo, desc="guidance scale cells", dynamic_ncols=True):
        mask = benchmark_masks(k, a.images, RES)
        res["cells"][f"{k}/{n}/{s:g}/{a.images}"] = dict(mask=k, nfe=n, scale=s, images=a.images,
                                                         **scale_cell(net, actor, gt, mask, n, s, a.batch))
        write_json(path, res)
    # The report covers every cell of OUT with this image count, not only this call's masks and NFE.
    cells = sorted((c for c in res["cells"].values() if c["images"] == a.images),
                   key=lambda c: (KINDS.index(c["mask"]), c["nfe"], c["scale"]))
    with open(os.path.join(a.out, "scale.md"), "w") as f:
        f.write(markdown(cells))
    label = f"aid, s = {', '.join(f'{s:g}' for s in sorted({c['scale'] for c in cells}))}"
    points = [dict(panel=f"{c['mask']}, {c['nfe']} NFE", curve=label, fd_fmnist=c["fd_fmnist"],
                   hole_psnr=c["hole_psnr"]) for c in cells]
    if a.reference:
        points += reference_points(a.reference, {(c["mask"], c["nfe"]) for c in cells}, a.images)
    curve_panels(points, os.path.join(a.out, "scale.png"), x="fd_fmnist", ys=[("hole_psnr", "hole PSNR (dB)")],
                 panel="panel", curve="curve", xlabel="FD_fmnist (lower is better)", logx=False,
                 title=f"AID with its field scaled by s, {a.images} test images per point")
    print(markdown(cells))
    print(f"wrote scale.json, scale.md, scale.png in {a.out}")


if __name__ == "__main__":
    main()
