"""The mean of M samples as an estimate of the posterior mean: hole PSNR at cost M·K against one sample.

    python benchmarks/sample_mean.py --out runs/sample_mean [--images 128] [--methods aid_sharp_ancestral ddnm]
        [--runs 1x19 2x9 3x5 1x9 2x5 4x5] [--masks center_box pixels70 lama_medium half_right] [--fd]

A sampler that draws near posterior samples has a hole MSE of about twice the posterior mean's (the sample's
spread adds the posterior variance once more); the mean of M samples drawn with different seeds removes
(M − 1)/M of that spread, at M times the cost. This measures whether, at a fixed budget of backbone calls,
M samples of K steps beat one sample of M·K steps. Each run "MxK" draws M samples of K steps
(aid.methods.mean_of_samples: sample j of image i uses seed i + 1000·j) and scores their mean, and its first
sample alone; the cost is the sampler's own report (NFE + VJP) times M. Methods by name (aid.methods.NAMES;
AID's settings with their bundled modules, DEFT with the bundled h-transform). The split is tune_baselines.py's:
the last --images training images, the validation masks. Writes OUT/sample_mean.json and OUT/sample_mean.md.
"""
from __future__ import annotations

import argparse
import json
import os

import torch
from tqdm.auto import tqdm

from aid.baselines.deft import BUNDLED_DEFT
from aid.bench.settings import DEFAULTS
from aid.data.datasets import fashion_mnist
from aid.data.masks import VALIDATION_MASK_SEED, masks
from aid.edm import load
from aid.eval.metrics import fmnist_distances, psnr
from aid.guidance.sample import BUNDLED_GUIDANCE
from aid.methods import NAMES, SEED_STRIDE, averages, base_method, load_sampler, mean_of_samples, module_key

SINGLE = [n for n in NAMES if not averages(n)]  # methods that draw one sample


def parse_run(text: str) -> tuple[int, int]:
    """"MxK" -> (M samples, K steps each)."""
    try:
        m, k = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a run is MxK (samples x steps), e.g. 2x9; got {text!r}") from None
    if m < 1 or k < 1:
        raise argparse.ArgumentTypeError(f"a run needs M >= 1 and K >= 1; got {text!r}")
    return m, k


def module_for(method: str) -> str | None:
    """The bundled trained module a method runs with (AID's settings, DEFT), None for the baselines."""
    if base_method(method) == "deft":
        return BUNDLED_DEFT
    return BUNDLED_GUIDANCE.get(module_key(method))


def sample_mean(fn, net, gt, mask, samples: int, steps: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(the mean of `samples` samples, the first sample, the cost of the mean: NFE + VJP per image times M), the
    samples those of aid.methods.mean_of_samples: the first with seed i, the others from seed i + SEED_STRIDE."""
    y, seeds = mask * gt, list(range(len(gt)))
    with torch.no_grad():
        first, report = fn(net, y, mask, seeds, num_steps=steps)
        first, cost = first.clamp(-1, 1), report["nfe"] + report.get("vjp", 0)
        if samples == 1:
            return first, first, cost
        rest, report = mean_of_samples(fn)(net, y, mask, [s + SEED_STRIDE for s in seeds], num_steps=steps,
                                           samples=samples - 1)
    return (first + (samples - 1) * rest) / samples, first, cost + report["nfe"] + report.get("vjp", 0)


def measure(net, gt, methods, runs, kinds, fd=False) -> list[dict]:
    """One row per method × mask kind × run (M, K): the hole PSNR of the mean and of its first sample, the cost."""
    rows = []
    jobs = [(m, k, r) for m in methods for k in kinds for r in runs]
    samplers = {m: load_sampler(m, net, module_for(m)) for m in methods}
    for method, kind, (m, k) in tqdm(jobs, desc="sample_mean", dynamic_ncols=True):
        mask = masks(kind, len(gt), gt.shape[-1], VALIDATION_MASK_SEED).to(gt.device)
        mean, first, cost = sample_mean(samplers[method], net, gt, mask, m, k)
        row = dict(method=method, mask=kind, samples=m, steps=k, cost=cost,
                   hole_psnr=psnr(mean, gt, region=1 - mask).mean().item(),
                   hole_psnr_one_sample=psnr(first, gt, region=1 - mask).mean().item())
        if fd:
            row["fd_fmnist"] = fmnist_distances(mean, gt)["fd_fmnist"]
        rows.append(row)
    return rows


def markdown(rows: list[dict], images: int) -> str:
    fd = "fd_fmnist" in rows[0]
    head = "| method | mask | M × K | cost | hole PSNR of the mean | one sample |" + (" FD_fmnist of the mean |" * fd)
    rule = "|---|---|---|---:|---:|---:|" + ("---:|" * fd)
    lines = [f"Validation split: {images} images (the last of the training split), the validation masks.", "",
             head, rule]
    for r in rows:
        fd_cell = f" {r['fd_fmnist']:.3g} |" if fd else ""
        lines.append(f"| {r['method']} | {r['mask']} | {r['samples']} × {r['steps']} | {r['cost']} | "
                     f"{r['hole_psnr']:.2f} | {r['hole_psnr_one_sample']:.2f} |{fd_cell}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=int, default=128, help="validation images (the last of the training split)")
    p.add_argument("--methods", nargs="+", default=["aid_sharp_ancestral"], choices=SINGLE,
                   help="methods that draw one sample (not the averaging variants, aid.methods.averages) "
                   "[aid_sharp_ancestral]")
    p.add_argument("--runs", nargs="+", type=parse_run, default=[parse_run(r) for r in ("1x19", "2x9", "1x9")],
                   metavar="MxK", help="M samples of K steps each [1x19 2x9 1x9]")
    p.add_argument("--masks", nargs="+", default=DEFAULTS["masks"], help="mask kinds [the benchmark's]")
    p.add_argument("--fd", action="store_true", help="also FD_fmnist of the mean (needs a few hundred --images)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args(argv)
    if a.images < 2:
        p.error("need --images >= 2")
    net = load(device=torch.device(a.device))
    gt = fashion_mnist("train", 32)[0][-a.images:].to(a.device)
    rows = measure(net, gt, a.methods, a.runs, a.masks, a.fd)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "sample_mean.json"), "w") as f:
        json.dump(dict(images=a.images, mask_seed=VALIDATION_MASK_SEED, seed_stride=SEED_STRIDE, rows=rows), f,
                  indent=1)
    report = markdown(rows, a.images)
    with open(os.path.join(a.out, "sample_mean.md"), "w") as f:
        f.write(report)
    print(report)


if __name__ == "__main__":
    main()
