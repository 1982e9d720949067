"""Unconditional quality of an EDM backbone on Fashion-MNIST: FD_fmnist and KD_fmnist of N samples
against the 10,000 test images, and a grid of the first 64 samples (the bundled model's card).

    python benchmarks/backbone_fd.py [--backbone PATH] [--num 10000] [--steps 18] --out runs/backbone_fd

Rerunning the same command after a kill resumes: every finished batch is kept under --out.

Samples come from seeds 0..N−1 with EDM's deterministic Heun sampler (NFE = 2·steps − 1).
FD_fmnist is the Fréchet distance in the bundled Fashion-MNIST classifier's feature space; it
is not FID and cannot be compared with published FIDs. As a scale, the same script reports the
distance between the first and second halves of the training set images (--num of each half,
capped at 30,000), i.e. what a perfect model would get with this many samples.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch
from tqdm.auto import tqdm

from aid.core.checkpoint import sha256_of
from aid.data.datasets import fashion_mnist
from aid.data.images import save_grid
from aid.edm import DEFAULT_BACKBONE, load, sample
from aid.eval.metrics import fmnist_distances


def draw(net, num: int, steps: int, batch: int, cache: str) -> tuple[torch.Tensor, int]:
    """Samples for seeds 0..num−1, each batch kept in `cache` so that a killed run resumes where it stopped;
    returns them and how many batches came from the cache (their sampling time is not this call's)."""
    os.makedirs(cache, exist_ok=True)
    out, resumed = [], 0
    for start in tqdm(range(0, num, batch), desc=f"sampling {num} images, {steps} Heun steps"):
        seeds = range(start, min(start + batch, num))
        path = os.path.join(cache, f"heun{steps}_seeds{seeds.start}-{seeds.stop - 1}.pt")
        if os.path.exists(path):
            out.append(torch.load(path))
            resumed += 1
            continue
        x = sample(net, seeds, num_steps=steps, solver="heun")
        torch.save(x, path + ".tmp")
        os.replace(path + ".tmp", path)
        out.append(x)
    return torch.cat(out).clamp(-1, 1), resumed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default=DEFAULT_BACKBONE)
    p.add_argument("--num", type=int, default=10000)
    p.add_argument("--steps", type=int, default=18)
    # 64 per call: on the 2-core CPU a forward pass costs 11.8 ms per image at batch 64 and 18.2 at 256 (one
    # thread, channels-first; measured 2026-11-24), the large batch falling out of cache
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    net = load(a.backbone)
    t = time.time()
    # the cache is per backbone file: samples of another backbone must never be reused
    cache = os.path.join(a.out, "samples_" + sha256_of(a.backbone)[:12])
    x, resumed = draw(net, a.num, a.steps, a.batch, cache)
    seconds = time.time() - t
    save_grid(x[:64], os.path.join(a.out, "samples.png"), nrow=8, scale=3)
    test, _ = fashion_mnist("test", 32)
    train, _ = fashion_mnist("train", 32)
    half = min(a.num, 30000)
    result = {"backbone": os.path.abspath(a.backbone), "num": a.num, "steps": a.steps, "nfe": 2 * a.steps - 1,
              "sampling_seconds": round(seconds, 1), "batches_resumed_from_cache": resumed,
              "threads": torch.get_num_threads(),
              "samples_vs_test": fmnist_distances(x, test),
              "train_half_vs_half": fmnist_distances(train[:half], train[half:2 * half])}
    with open(os.path.join(a.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
