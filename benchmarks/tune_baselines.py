"""Re-tune the baselines' hyperparameters for EDM's σ scale, on a validation split.

    python benchmarks/tune_baselines.py --out runs/tune [--images 32] [--nfe 9 19]

The values in the baselines' signatures were ported from their papers, whose step sizes live
on DDPM's grid; on EDM's σ grid they need not be good. For each method and each value of its
main hyperparameter (GRID), this inpaints a validation split at each target cost and mask kind
and reports the hole PSNR, then picks the value with the best mean over (mask, cost).

Held out from the benchmark on both sides:
- images: the last --images images of Fashion-MNIST's *training* split (the benchmark uses the
  test split; no baseline trains, so the training split is a fair validation set for them; the
  backbone did train on these images, which may favour every method a little, alike);
- masks: aid.data.masks.masks(kind, n, 32, VALIDATION_MASK_SEED), a seed disjoint from the benchmark's
  set (10_000 + version) and from AID's/DEFT's training pools (20_000 + seed).
Cost → num_steps by aid.bench.run's one rule (DPS/ΠGDM pay a VJP per step). Image i uses seed i.
`--aid PATH...` scores AID guidance modules on the same split (to choose a snapshot of a run), deployed as
aid.guidance.sample_aid does by default (the known pixels projected every step); `--aid-paste` also scores each
in the paper's form (pasted at the end only: sample_aid(project=False)), `--aid-ancestral` each on ancestral
steps (DDIM(η = 1) from the guided denoiser: sample_aid(eta=1)), and `--aid-scale S...` each at the
guidance scales S (sample_aid(guidance_scale=S), value "PATH [s=S]"; 1, the trained field, is always scored;
with --aid-ancestral also on ancestral steps, "PATH [ancestral, s=S]").
`--only-default` scores each of --methods at its default alone (any baseline: reference rows, e.g. DDNM at 100
NFE), and `--fd` adds FD_fmnist per cell against the validation images (for a sharp setting; at a few hundred
images it is biased upwards, so compare rows, not with the test tables) and the seam ratio with its standard error
(aid.eval.metrics.seam_ratio; on the centre box it read higher here than on the test split).
Writes OUT/tune.json and OUT/tune.md (and prints the table).
"""
from __future__ import annotations

import argparse
import json
import os
from functools import partial

import torch
from tqdm.auto import tqdm

from aid.baselines import METHODS, defaults
from aid.baselines.deft import BUNDLED_DEFT
from aid.bench.run import steps_for
from aid.bench.settings import DEFAULTS
from aid.data.datasets import fashion_mnist
from aid.data.masks import VALIDATION_MASK_SEED, masks
from aid.edm import load
from aid.eval.metrics import fmnist_distances, psnr, seam_ratio
from aid.methods import load_sampler

MASK_KINDS = DEFAULTS["masks"]  # the benchmark's default kinds
GRID = {  # method → (hyperparameter, values); the current default is always among them
    "dps": ("zeta", [0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0]),
    "pigdm": ("weight", [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]),
    "diffpir": ("zeta", [0.0, 0.3, 0.6, 1.0]),
    "ddnm": ("eta", [0.0, 0.5, 0.85, 1.0]),
    "ding": ("eta", ["square", "default", 0.0, 0.5, 1.0]),  # DING's public eta types in σ form, or a fixed η
    "daps": ("ode_steps", [1, 2, 5]),  # at a fixed cost: more annealing levels or a longer x̂0 ODE per level
}


def inpaint(method: str, hp: dict, net, gt, mask, target: int, fn=None) -> torch.Tensor:
    """One method (fn, by default METHODS[method]) at one setting on the validation images, clamped to [-1, 1]."""
    fn = fn or METHODS[method]
    n = steps_for(method, target, {**defaults(fn), **hp})
    with torch.no_grad():
        x, _ = fn(net, mask * gt, mask, list(range(len(gt))), num_steps=n, **hp)
    return x.clamp(-1, 1)


def jobs_for(net, methods, aid_paths, aid_paste, aid_scales, only_default, deft=None, aid_ancestral=False) -> list:
    """(method, hyperparameter, value, hp, sampler or None) to score: each of methods over its GRID values (only
    its default with only_default), a method GRID does not tune at its defaults (main() allows it with
    only_default; DEFT with its trained h-transform, deft), then the AID modules as they are, in the paper's form
    (aid_paste), on ancestral steps (aid_ancestral: DDIM(1) from the guided denoiser) and at each guidance scale
    s ≠ 1 of aid_scales (with aid_ancestral, on both samplers: "PATH [ancestral, s=S]")."""
    jobs = []
    for m in methods:
        if m in GRID:
            name, values = GRID[m]
            jobs += [(m, name, v, {name: v}, None) for v in ([defaults(METHODS[m])[name]] if only_default else values)]
        else:
            jobs.append((m, "default", "default", {}, load_sampler(m, net, deft) if m == "deft" else None))
    aid = {p: load_sampler("aid", net, p) for p in aid_paths}
    jobs += [("aid", "guidance", p, {}, fn) for p, fn in aid.items()]  # value: the path
    if aid_paste:
        jobs += [("aid", "guidance", f"{p} [paste]", {}, partial(fn, project=False)) for p, fn in aid.items()]
    if aid_ancestral:
        jobs += [("aid", "guidance", f"{p} [ancestral]", {}, partial(fn, eta=1.0)) for p, fn in aid.items()]
    samplers = [("", {})] + ([("ancestral, ", dict(eta=1.0))] if aid_ancestral else [])  # each scale on each
    jobs += [("aid", "guidance", f"{p} [{tag}s={s}]", {}, partial(fn, guidance_scale=s, **kw))
             for tag, kw in samplers for p, fn in aid.items() for s in aid_scales if s != 1]
    return jobs


def tune(net, gt, methods: list[str], targets: list[int], aid_paths=(), aid_paste=False, aid_scales=(),
         only_default=False, fd=False, deft=None, aid_ancestral=False) -> dict:
    """{method: {hyperparameter, default, values: {value: {"mask/cost": dB, "mean": dB}}, best}}; with
    aid_paths, also "aid": one value per guidance module (to choose among a run's snapshots), with
    aid_paste one more per module, "PATH [paste]", deployed in the paper's form, with aid_ancestral one more,
    "PATH [ancestral]", on DDIM(η = 1) steps, and one per module and
    scale s ≠ 1 of aid_scales, "PATH [s=S]", its field scaled by s. only_default: each method at its default
    value only (a reference row, e.g. DDNM at its own 100 steps). fd: each value also holds "fd": {"mask/cost":
    FD_fmnist against the validation images} (biased upwards at a few hundred images: compare rows only), "seam":
    {"mask/cost": the seam ratio} and "seam_se": {"mask/cost": its standard error}."""
    val_masks = {k: masks(k, len(gt), gt.shape[-1], VALIDATION_MASK_SEED).to(gt.device) for k in MASK_KINDS}
    out = {}
    jobs = jobs_for(net, methods, aid_paths, aid_paste, aid_scales, only_default, deft, aid_ancestral)
    for method, name, value, hp, fn in tqdm(jobs, desc="tuning", dynamic_ncols=True):
        default = defaults(METHODS[method])[name] if method in GRID else None
        rec = out.setdefault(method, dict(hyperparameter=name, default=default, values={}))
        scores, fds, seams, seam_ses = {}, {}, {}, {}
        for k, m in val_masks.items():
            for t in targets:
                x = inpaint(method, hp, net, gt, m, t, fn)
                scores[f"{k}/{t}"] = psnr(x, gt, region=1 - m).mean().item()
                if fd:
                    fds[f"{k}/{t}"] = fmnist_distances(x, gt)["fd_fmnist"]
                    seams[f"{k}/{t}"], seam_ses[f"{k}/{t}"] = seam_ratio(x, gt, m)
        extra = dict(fd=fds, seam=seams, seam_se=seam_ses) if fd else {}
        rec["values"][str(value)] = dict(scores, mean=sum(scores.values()) / len(scores), **extra)
    for rec in out.values():
        rec["best"] = max(rec["values"], key=lambda v: rec["values"][v]["mean"])
    return out


def markdown(res: dict, targets: list[int]) -> str:
    """The hole-PSNR table (dB), and the FD_fmnist and seam tables below it where the values have them."""
    cols = [f"{k}/{t}" for k in MASK_KINDS for t in targets]
    rows = [(method, rec, v, s) for method, rec in res.items() for v, s in rec["values"].items()]

    def table(title, get, mean=True, fmt="{:.2f}".format):
        head = ["| method | value | " + " | ".join(cols) + (" | mean |" if mean else " |"),
                "|---|---:|" + "---:|" * (len(cols) + mean)]
        lines = [title, ""] + head if title else head
        for method, rec, v, s in rows:
            tag = (" (default)" if v == str(rec["default"]) else "") + (" **best**" if v == rec["best"] else "")
            cells = [get(s, c) for c in cols] + ([s["mean"]] if mean else [])
            value = "its defaults" if rec["hyperparameter"] == "default" else f"{rec['hyperparameter']} = {v}{tag}"
            lines.append(f"| {method} | {value} | " + " | ".join(map(fmt, cells)) + " |")
        return lines

    lines = table(None, lambda s, c: s[c])
    if all("fd" in s for *_, s in rows):
        lines += [""] + table("FD_fmnist against the validation images (biased upwards at this image count: compare "
                              "rows only)", lambda s, c: s["fd"][c], mean=False)
        lines += [""] + table("Seam ± its standard error: the outputs' jump across the mask's boundary over the "
                              "images' (1: none visible)", lambda s, c: (s["seam"][c], s["seam_se"][c]), mean=False,
                              fmt=lambda r: f"{r[0]:.3f} ± {r[1]:.3f}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=int, default=32, help="validation images (the last of the training split)")
    p.add_argument("--nfe", nargs="+", type=int, default=[9, 19], help="target costs (NFE + VJP)")
    p.add_argument("--methods", nargs="*", default=list(GRID), choices=list(METHODS),
                   help=f"methods to tune (their GRID values: {', '.join(GRID)}); any method with --only-default")
    p.add_argument("--aid", nargs="+", default=[], metavar="PATH", help="also score these AID guidance modules")
    p.add_argument("--aid-paste", action="store_true", help="also score each --aid module in the paper's form "
                   "(pasted at the end only)")
    p.add_argument("--aid-ancestral", action="store_true", help="also score each --aid module on ancestral "
                   "steps (DDIM(η = 1) from the guided denoiser: sample_aid(eta=1))")
    p.add_argument("--aid-scale", nargs="+", type=float, default=[], metavar="S",
                   help="also score each --aid module with its field scaled by S (sample_aid's guidance_scale)")
    p.add_argument("--only-default", action="store_true", help="score each of --methods at its default only")
    p.add_argument("--fd", action="store_true",
                   help="also report FD_fmnist (needs a few hundred --images) and the seam ratio per cell")
    p.add_argument("--deft", default=BUNDLED_DEFT,
                   help="DEFT's h-transform, for --methods deft (default: the bundled one)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args(argv)
    if a.images < 2 or min(a.nfe) < 1:
        p.error("need --images >= 2 and every --nfe >= 1")
    untuned = [m for m in a.methods if m not in GRID]
    if untuned and not a.only_default:
        p.error(f"{', '.join(untuned)}: no grid to tune (choose from {', '.join(GRID)}); "
                "score them with --only-default")
    net = load(device=torch.device(a.device))
    gt = fashion_mnist("train", 32)[0][-a.images:].to(a.device)
    res = tune(net, gt, a.methods, a.nfe, a.aid, a.aid_paste, a.aid_scale, a.only_default, a.fd, a.deft,
               a.aid_ancestral)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "tune.json"), "w") as f:
        json.dump(dict(images=a.images, nfe=a.nfe, mask_seed=VALIDATION_MASK_SEED, results=res), f, indent=1)
    table = markdown(res, a.nfe)
    with open(os.path.join(a.out, "tune.md"), "w") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
