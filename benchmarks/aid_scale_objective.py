"""Is AID's trained field optimal for its own objective along the scale direction? J(s·μ_φ) on validation images.

    python benchmarks/aid_scale_objective.py --out runs/gsj [--scales 0.75 1 1.25 1.5] [--steps 5 9 19]
        [--aid PATH ...] [--images 64]

The guidance-scale sweep (aid_guidance_scale.py) found that a field scaled by s > 1 gives a higher hole PSNR,
most at 19 steps. Hole PSNR is not what AID minimises: its objective is
    J(u) = E[Σ_k (β/2)Δr_k‖u_k‖² + Ψ(X_K)],   Ψ = ‖m⊙e‖² + w_hole·‖(1−m)⊙e‖²,  e = X_K − x0
(docs/method.md; β and w_hole from the module's training). If J(s·μ_φ) is least near s = 1, the trained field is
optimal for J along that direction, and a stronger field has to come from the objective (β, w_hole), not from
more training; if J still falls for s > 1, the actor under-steers for its own objective.

For each module × mask kind × K × s: J, Ψ and the control energy of the deterministic guided rollout (no
exploration; the same starting noise for every module and s) on the validation split of tune_baselines.py:
the last --images training images (AID trained on the whole training split, so only the masks, from its
VALIDATION_MASK_SEED, are held out). Writes OUT/objective.json and OUT/objective.md.
"""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace

import torch
from tqdm.auto import tqdm

from aid.bench.settings import DEFAULTS
from aid.core.checkpoint import read_metadata
from aid.data.datasets import fashion_mnist
from aid.data.masks import VALIDATION_MASK_SEED, masks
from aid.edm import DEFAULT_BACKBONE, load
from aid.edm.sampler import edm_sigmas
from aid.guidance.actor_critic import ACConfig, guided_costs
from aid.guidance.sample import DEFAULT_GUIDANCE, load_actor

MASK_KINDS = DEFAULTS["masks"]  # the benchmark's default kinds


def objective(net, actor, x0, mask, cfg: ACConfig, s: float) -> dict:
    """Mean J, Ψ and control energy over the images of the rollout with u = s·μ_φ and cfg.num_steps Euler steps."""
    sigmas = edm_sigmas(cfg.num_steps, cfg.sigma_min, cfg.sigma_max, cfg.rho, x0.device, torch.float32)
    energy, psi = guided_costs(net, lambda *inputs: s * actor(*inputs), x0, mask, sigmas, cfg,
                               torch.Generator(x0.device).manual_seed(0))
    return dict(J=(energy + psi).mean().item(), psi=psi.mean().item(), energy=energy.mean().item())


def training_config(path: str) -> ACConfig:
    """ACConfig with the β, w_hole and σ grid the module was trained with (from its metadata)."""
    trained = read_metadata(path)[2].get("ac_config") or {}
    keep = ("beta", "w_hole", "sigma_min", "sigma_max", "rho")
    return replace(ACConfig(), **{k: trained[k] for k in keep if k in trained})


def markdown(cells: list[dict]) -> str:
    rows = ["| module | mask | K | s | J | Ψ | control energy |", "|---|---|---:|---:|---:|---:|---:|"]
    for c in cells:
        best = min(o["J"] for o in cells if (o["aid"], o["mask"], o["K"]) == (c["aid"], c["mask"], c["K"]))
        J = f"**{c['J']:.2f}**" if c["J"] == best else f"{c['J']:.2f}"
        rows.append(f"| {os.path.basename(c['aid'])} | {c['mask']} | {c['K']} | {c['s']:g} | {J} | {c['psi']:.2f} "
                    f"| {c['energy']:.2f} |")
    return "\n".join(rows) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    p.add_argument("--out", required=True)
    p.add_argument("--aid", nargs="+", default=[DEFAULT_GUIDANCE], help="guidance modules [the bundled one]")
    p.add_argument("--scales", nargs="+", type=float, default=[0.75, 1.0, 1.25, 1.5])
    p.add_argument("--steps", nargs="+", type=int, default=[5, 9, 19], help="K, Euler steps")
    p.add_argument("--masks", nargs="+", default=MASK_KINDS)
    p.add_argument("--images", type=int, default=64, help="the last images of the training split")
    p.add_argument("--backbone", default=DEFAULT_BACKBONE)
    a = p.parse_args(argv)
    if a.images < 1 or min(a.steps) < 1 or any(not s >= 0 for s in a.scales):
        p.error("need --images >= 1, every --steps >= 1 and every --scales >= 0")
    net = load(a.backbone)
    x0 = fashion_mnist("train", net.img_resolution)[0][-a.images:]
    cells = []
    jobs = [(path, kind, K) for path in a.aid for kind in a.masks for K in a.steps]
    for path, kind, K in tqdm(jobs, desc="J(s·μ)", dynamic_ncols=True):
        actor, cfg = load_actor(path), replace(training_config(path), num_steps=K)
        mask = masks(kind, a.images, net.img_resolution, VALIDATION_MASK_SEED)
        cells += [dict(aid=path, mask=kind, K=K, s=s, **objective(net, actor, x0, mask, cfg, s)) for s in a.scales]
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "objective.json"), "w") as f:
        json.dump(dict(images=a.images, mask_seed=VALIDATION_MASK_SEED, backbone=a.backbone, cells=cells), f, indent=1)
    table = markdown(cells)
    with open(os.path.join(a.out, "objective.md"), "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
