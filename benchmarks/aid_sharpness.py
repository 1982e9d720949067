"""Where does AID's blur come from at deployment, and can the sampler, not the module, trade it? (issue 24's sharp
setting). On the validation split (the last --images training images, aid.data.masks' validation seed), at one
cost, hole PSNR and FD_fmnist of:

- AID as deployed (Euler steps, the control, the known pixels projected): η = 0 below;
- AID with stochastic steps: the Euler step replaced by DDIM(η) from D, x' = D + √(1−η²)(σ'/σ)(x − D) + η·σ'·z,
  the control added as before (Δr·u), the projection as before; η on the last `--tail` fraction of the steps
  only (the early steps set the structure, the late ones the texture);
- the best baselines at the same cost (DDNM, RePaint).

FD_fmnist at a few hundred images is biased upwards; compare rows, not with the 1,000-image test tables.

    python benchmarks/aid_sharpness.py --out runs/sharp --images 256 --nfe 9
"""
from __future__ import annotations

import argparse
import json
import os

import torch

from aid.baselines import METHODS
from aid.baselines.common import start
from aid.data.datasets import fashion_mnist
from aid.data.masks import VALIDATION_MASK_SEED, masks
from aid.edm import load
from aid.edm.sampler import guided_step
from aid.eval.metrics import fmnist_distances, psnr
from aid.guidance.sample import DEFAULT_GUIDANCE, load_actor


@torch.no_grad()
def aid_eta(net, actor, y, mask, seeds, num_steps: int, eta: float, tail: float):
    """AID with DDIM(η) steps on the last `tail` fraction of the grid (η = 0 elsewhere, which is the Euler step)."""
    run, x = start(net, y, mask, seeds, num_steps)
    y = run.mask * run.y
    first_noisy = round(num_steps * (1 - tail))
    for i in range(num_steps):
        s, sn = run.sigma(i), run.sigma(i + 1)
        D = run.denoise(x, i)
        u = actor(x, s, y, run.mask, D, sn)
        e = torch.full_like(s, eta if i >= first_noisy else 0.0)
        z_eta, z = run.noise(), run.noise()  # in this order: the recorded results' noise
        x = guided_step(run.denoise, x, D, s, sn, u=u, heun=False, mask=run.mask, y=run.y, z=z, eta=e, z_eta=z_eta)
    return run.paste(x)


def scores(x, gt, mask) -> dict:
    x = x.clamp(-1, 1)
    return dict(hole_psnr=float(psnr(x, gt, 1 - mask).mean()), fd_fmnist=fmnist_distances(x, gt)["fd_fmnist"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--nfe", type=int, default=9)
    p.add_argument("--masks", nargs="+", default=["center_box", "half_right", "pixels70", "lama_medium"])
    p.add_argument("--etas", nargs="+", type=float, default=[0.5, 1.0])
    p.add_argument("--tails", nargs="+", type=float, default=[0.34, 0.67, 1.0])
    p.add_argument("--aid", default=DEFAULT_GUIDANCE)
    p.add_argument("--batch", type=int, default=64)
    a = p.parse_args(argv)
    net, actor = load(), load_actor(a.aid)
    gt = fashion_mnist("train", 32)[0][-a.images:]
    seeds = list(range(a.images))
    runs = {"aid (η = 0)": lambda y, m, sd: aid_eta(net, actor, y, m, sd, a.nfe, 0.0, 1.0)}
    for eta in a.etas:
        for tail in a.tails:
            runs[f"aid η = {eta:g}, last {tail:.0%}"] = \
                lambda y, m, sd, eta=eta, tail=tail: aid_eta(net, actor, y, m, sd, a.nfe, eta, tail)
    runs["ddnm"] = lambda y, m, sd: METHODS["ddnm"](net, y, m, sd, num_steps=a.nfe)[0]
    runs["repaint"] = lambda y, m, sd: METHODS["repaint"](net, y, m, sd, num_steps=a.nfe)[0]
    os.makedirs(a.out, exist_ok=True)
    path, res = os.path.join(a.out, "sharpness.json"), {}
    if os.path.exists(path):
        res = json.load(open(path))
    for kind in a.masks:
        mask = masks(kind, a.images, 32, VALIDATION_MASK_SEED)
        for name, fn in runs.items():
            key = f"{kind} | {name}"
            if key in res:
                continue
            x = torch.cat([fn(gt[i:i + a.batch] * mask[i:i + a.batch], mask[i:i + a.batch], seeds[i:i + a.batch])
                           for i in range(0, a.images, a.batch)])
            res[key] = scores(x, gt, mask)
            print(f"{key}: hole PSNR {res[key]['hole_psnr']:.2f}, FD {res[key]['fd_fmnist']:.2f}", flush=True)
            json.dump(res, open(path, "w"), indent=1)


if __name__ == "__main__":
    main()
