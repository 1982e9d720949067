"""The guided denoiser along AID's sampling path: the hole PSNR of x̂0_k = D_k + σ_k·μ_φ at every step k.

    python benchmarks/aid_denoised_path.py --out runs/path [--images 64] [--nfe 9 19] [--aid PATH...] [--backbone P]

The guided Euler step is the backbone's with D replaced by D' = D + σ·u (aid.guidance.denoise), so every step of
AID's sampler holds an estimate of the clean image, x̂0_k = D'(X_k; σ_k), the last of which is its output. For the
denoising-trained module (the sharp setting) x̂0_k estimates E[x0 | X_k, y]: at σ_0 = 80, where X_0 is nearly
pure noise, it is the module's own one-call estimate of the posterior mean E[x0 | y], and down the path it moves
towards a posterior sample. For the actor–critic module x̂0_k is what the control implies. This shows where
along the path hole PSNR is made or lost, and what one backbone call plus the module gives (the first step).
The split is tune_baselines.py's (the last --images training images, the validation masks; seeds 0..n−1); AID is
projected every step, as deployed; x̂0_k is pasted into the known pixels and clamped as the benchmark scores.
Writes OUT/path.json, OUT/path.md (the first step, the best step and the output) and OUT/path.png.
"""
from __future__ import annotations

import argparse
import json
import os

import torch
from tqdm.auto import tqdm

from aid.bench.provenance import portable
from aid.bench.settings import DEFAULTS
from aid.data.datasets import fashion_mnist
from aid.data.masks import VALIDATION_MASK_SEED, masks
from aid.edm import load
from aid.edm.sampler import sample
from aid.eval.metrics import psnr
from aid.eval.plots import curve_panels
from aid.guidance.sample import DEFAULT_GUIDANCE, SHARP_GUIDANCE, load_actor


def denoised_path(net, actor, gt, mask, num_steps: int) -> dict:
    """{"sigma": [σ_k], "hole_psnr": [mean hole PSNR of x̂0_k], "output": mean hole PSNR of the sample}."""
    y = mask * gt
    sigmas, scores = [], []

    def guidance(x, sigma, D, sigma_next):  # the sampler's guidance hook sees each step's D; u as deployed
        u = actor(x, sigma, y, mask, D, sigma_next)
        x0_hat = (y + (1 - mask) * (D + sigma.view(-1, 1, 1, 1) * u)).clamp(-1, 1)
        sigmas.append(float(sigma[0]))
        scores.append(psnr(x0_hat, gt, 1 - mask).mean().item())
        return u

    with torch.no_grad():
        x = sample(net, list(range(len(gt))), num_steps=num_steps, solver="euler", guidance=guidance, mask=mask, y=y)
    output = psnr((y + (1 - mask) * x).clamp(-1, 1), gt, 1 - mask).mean().item()
    return {"sigma": sigmas, "hole_psnr": scores, "output": output}


def report(res: dict) -> str:
    lines = ["| mask | module | NFE | x̂0 at σ = 80 (1 call) | best x̂0 (σ, call) | output |",
             "|---|---|---:|---:|---:|---:|"]
    for key, r in res.items():
        kind, module, K = key.split("|")
        b = max(range(len(r["hole_psnr"])), key=r["hole_psnr"].__getitem__)
        lines.append(f"| {kind} | {module} | {K} | {r['hole_psnr'][0]:.2f} | {r['hole_psnr'][b]:.2f} "
                     f"({r['sigma'][b]:.2g}, {b + 1}) | {r['output']:.2f} |")
    return "\n".join(lines) + "\n"


def plot(res: dict, path: str) -> None:
    """Hole PSNR of x̂0_k against σ_k, a panel per mask kind, a curve per module and step count."""
    records = []
    for key, r in res.items():
        kind, module, K = key.split("|")
        records += [dict(mask=kind, curve=f"{module}, {K} NFE", sigma=sig, hole_psnr=p)
                    for sig, p in zip(r["sigma"], r["hole_psnr"])]
    curve_panels(records, path, x="sigma", ys=[("hole_psnr", "hole PSNR of x̂0_k (dB)")], panel="mask",
                 curve="curve", xlabel="σ_k (sampling runs from right to left)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--nfe", type=int, nargs="+", default=[9, 19], help="Euler steps (one backbone call each)")
    p.add_argument("--aid", nargs="+", default=[SHARP_GUIDANCE, DEFAULT_GUIDANCE], help="guidance modules")
    p.add_argument("--masks", nargs="+", default=DEFAULTS["masks"])
    p.add_argument("--backbone", default=None, help="the backbone the modules steer (default: the bundled one)")
    a = p.parse_args(argv)
    if a.images < 1 or min(a.nfe) < 1:
        p.error("need --images >= 1 and every --nfe >= 1")
    net = load(a.backbone) if a.backbone else load()
    gt = fashion_mnist("train", 32)[0][-a.images:]
    actors = {os.path.basename(path): load_actor(path) for path in a.aid}
    res = {}
    for kind in tqdm(a.masks, desc="mask kinds"):
        m = masks(kind, len(gt), gt.shape[-1], VALIDATION_MASK_SEED)
        for name, actor in actors.items():
            for K in a.nfe:
                res[f"{kind}|{name}|{K}"] = denoised_path(net, actor, gt, m, K)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "path.json"), "w") as f:
        modules = list(portable(dict(enumerate(a.aid))).values())  # the bundled ones relative to the checkout
        json.dump(dict(images=a.images, mask_seed=VALIDATION_MASK_SEED, modules=modules, results=res), f, indent=1)
    with open(os.path.join(a.out, "path.md"), "w") as f:
        f.write(report(res))
    plot(res, os.path.join(a.out, "path.png"))
    print(report(res))


if __name__ == "__main__":
    main()
