"""How far the posterior mean is ahead of posterior samples, on the validation split: the ceiling of AID's
fidelity setting and what "AID ≥ DDNM at 100 NFE" asks.

    python benchmarks/posterior_mean_headroom.py --out runs/headroom [--images 32] [--samples 6]

AID's exact optimum sits within ~0.5 dB of the posterior mean on the Gaussian oracle (docs/notes/results-notebook.md),
and the posterior mean's hole MSE is half a posterior sample's there. On images the posterior is unknown, so this
draws --samples independent completions per image from a near-posterior sampler (DDNM at its 100-step default;
seeds i + 100,000·j) and reports, per mask kind, the hole PSNR of one sample, of the average of the S samples,
and of the posterior mean estimated without the averages' own noise: per image, MSE(mean) ≈ MSE(average) −
v/S, v the samples' per-pixel variance around their average (unbiased, S − 1 in the denominator), floored at
1 % of MSE(average). The split is tune_baselines.py's: the last --images training images, the validation masks.
Writes OUT/headroom.json and OUT/headroom.md.
"""
from __future__ import annotations

import argparse
import json
import os

import torch
from tqdm.auto import tqdm

from aid.baselines import METHODS
from aid.bench.settings import DEFAULTS
from aid.data.datasets import fashion_mnist
from aid.data.masks import VALIDATION_MASK_SEED, masks
from aid.edm import load
from aid.eval.metrics import hole_mse

MASK_KINDS = DEFAULTS["masks"]  # the benchmark's default kinds
SEED_STRIDE = 100_000  # sample j of image i uses seed i + SEED_STRIDE·j


def db(mse: torch.Tensor) -> float:
    """The mean over images of the per-image PSNR (data range 2), as the benchmark averages."""
    return (10 * torch.log10(4.0 / mse)).mean().item()


def samples(method: str, net, gt, mask, n_samples: int) -> torch.Tensor:
    """[S, B, C, H, W]: n_samples completions of every image, each from its own seed."""
    fn = METHODS[method]
    with torch.no_grad():
        return torch.stack([fn(net, mask * gt, mask, [i + SEED_STRIDE * j for i in range(len(gt))])[0].clamp(-1, 1)
                            for j in range(n_samples)])


def headroom(xs: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> dict:
    """Hole PSNR (dB) of one sample, of the samples' average and of the estimated posterior mean."""
    S = xs.shape[0]
    avg = xs.mean(0)
    mse_avg = hole_mse(avg, gt, mask)
    v = sum(hole_mse(x, avg, mask) for x in xs) / (S - 1)  # the hole's mean per-pixel variance, unbiased
    return {"one_sample": sum(db(hole_mse(x, gt, mask)) for x in xs) / S, f"average_of_{S}": db(mse_avg),
            "posterior_mean_est": db(torch.maximum(mse_avg - v / S, 0.01 * mse_avg))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--samples", type=int, default=6, help="completions per image (>= 2)")
    p.add_argument("--method", default="ddnm", choices=sorted(METHODS), help="the sampler, at its default steps")
    p.add_argument("--masks", nargs="+", default=MASK_KINDS)
    a = p.parse_args(argv)
    if a.samples < 2 or a.images < 1:
        p.error("need --samples >= 2 and --images >= 1")
    net = load()
    gt = fashion_mnist("train", 32)[0][-a.images:]
    res = {}
    for k in tqdm(a.masks, desc="mask kinds"):
        m = masks(k, len(gt), gt.shape[-1], VALIDATION_MASK_SEED)
        res[k] = headroom(samples(a.method, net, gt, m, a.samples), gt, m)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "headroom.json"), "w") as f:
        json.dump(dict(images=a.images, samples=a.samples, method=a.method, mask_seed=VALIDATION_MASK_SEED,
                       results=res), f, indent=1)
    cols = list(next(iter(res.values())))
    lines = [f"| mask | {' | '.join(cols)} |", "|---|" + "---:|" * len(cols)]
    lines += [f"| {k} | " + " | ".join(f"{r[c]:.2f}" for c in cols) + " |" for k, r in res.items()]
    with open(os.path.join(a.out, "headroom.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
