"""The speed–quality benchmark: every inpainting method × cost × mask type on held-out
Fashion-MNIST test images, all on the same frozen EDM backbone.

    aid bench --out runs/sq                 # the full sweep (a GPU job); also python benchmarks/speed_quality.py
    aid bench --out runs/sq --resume        # continue it, or add cells
    aid bench --out runs/sq --resume --merge runs/sq_b   # fold in cells another process ran
    aid bench --out /tmp/sq --quick         # the one-minute smoke version

The rules every run keeps (images, masks, metrics, and how a target cost becomes num_steps) are
aid.bench.settings.RULES, written into results.json and results.md; cost() and steps_for() below
implement its cost rule. The results file's bookkeeping (resume, merge) is aid.bench.results.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, fields

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

import aid
import aid_ext
from aid.baselines import METHODS, defaults, repaint_nfe
from aid.baselines.deft import HOW_TO_TRAIN
from aid.bench.report import key_of, write_reports
from aid.bench.results import (
    BenchmarkError,
    add_roles,
    check_hyperparameters,
    hyperparameters,
    merge_from,
    start_results,
    write_json,
)
from aid.bench.settings import ALL_METHODS, DEFAULTS, QUICK, Settings
from aid.core.checkpoint import atomic_write, sha256_of
from aid.core.common import device_of
from aid.data.datasets import fashion_mnist
from aid.data.masks import KINDS, TEST_SET_VERSION, benchmark_masks
from aid.edm import DEFAULT_BACKBONE, load
from aid.eval.metrics import boundary_jump, fmnist_distances, hole_mse, psnr, ssim
from aid.guidance.sample import DEFAULT_GUIDANCE
from aid.methods import load_sampler

VJP_PER_STEP = {"dps", "pigdm"}
AMORTIZED = {  # methods that need a trained module: the option that gives it, and how to get one
    "deft": ("--deft", HOW_TO_TRAIN),
    "aid": ("--aid", "AID is only reported from a trained guidance module "
                     "(aid.guidance.networks.GuidanceModule checkpoint; train one with `aid train`)")}
RES = 32  # Fashion-MNIST padded to 32×32: the FD_fmnist classifier's input


def cost(name: str, num_steps: int, hp: dict) -> int:
    """NFE + VJP per image of one run, as the method's report counts it."""
    if name == "repaint":
        return repaint_nfe(num_steps, hp["jump_length"], hp["jump_n_sample"])
    return num_steps * (2 if name in VJP_PER_STEP else 1)


def steps_for(name: str, target: int, hp: dict) -> int:
    """The smallest num_steps whose cost is nearest to the target (cost is nondecreasing in num_steps)."""
    n = 1
    while cost(name, n + 1, hp) <= target:
        n += 1
    return n + 1 if abs(cost(name, n + 1, hp) - target) < abs(cost(name, n, hp) - target) else n


def points(name: str, fn, targets: list[int], with_default: bool) -> list[dict]:
    """The settings one method runs at: [{num_steps, targets, default}], by num_steps."""
    hp = defaults(fn)
    by_steps: dict[int, list[int]] = {}
    for t in targets:
        by_steps.setdefault(steps_for(name, t, hp), []).append(t)
    default = hp.get("num_steps") if with_default else None
    if default is not None:
        by_steps.setdefault(default, [])
    return [dict(num_steps=n, targets=by_steps[n], default=n == default) for n in sorted(by_steps)]


def samplers(methods: list[str], net, *, deft: str | None = None, aid: str | None = None) -> tuple[dict, dict]:
    """(name → sampler(net, y, mask, seeds, num_steps=…), name → why it is skipped) for methods. DEFT and AID run
    from their trained modules, the paths deft and aid (aid.methods.load_sampler; AID with Euler steps, then the
    paste); without one they are skipped."""
    run, skipped, modules = {}, {}, dict(deft=deft, aid=aid)
    for name in methods:
        if name in AMORTIZED and modules[name] is None:
            option, how = AMORTIZED[name]
            skipped[name] = f"no {option} PATH given: {how}"
        else:
            run[name] = load_sampler(name, net, modules.get(name))
    return run, skipped


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_cell(sampler, net, gt, mask, seeds, num_steps: int, batch: int):
    """(outputs [n, C, H, W] on the CPU, the first batch's report, the sampler's seconds in total)."""
    device, outs, seconds, report = device_of(net), [], 0.0, None
    for i in range(0, len(gt), batch):
        m = mask[i:i + batch].to(device)
        y = gt[i:i + batch].to(device) * m
        sync(device)
        t = time.perf_counter()
        with torch.no_grad():
            x, rep = sampler(net, y, m, seeds[i:i + batch], num_steps=num_steps)
        sync(device)
        seconds += time.perf_counter() - t
        outs.append(x.float().cpu())
        report = report or rep
    return torch.cat(outs), report, seconds


def cell_metrics(x, gt, mask, fd_min: int) -> dict:
    """The quality numbers of one cell (see RULES, aid.bench.settings). Non-finite outputs are counted and
    left in (their metrics come out NaN), and FD/KD_fmnist is skipped for such a cell."""
    bad = int((~torch.isfinite(x)).flatten(1).any(1).sum())
    out = {"known_max_abs_err": float(torch.where(mask.bool(), x - gt, 0).abs().max()), "non_finite_images": bad}
    x = x.clamp(-1, 1)
    per_image = {"hole_psnr": psnr(x, gt, 1 - mask), "psnr": psnr(x, gt), "ssim": ssim(x, gt),
                 "hole_mse": hole_mse(x, gt, mask)}
    for k, v in per_image.items():
        out[k], out[f"{k}_std"] = float(v.double().mean()), float(v.double().std())
    out["seam"] = float(boundary_jump(x, mask).nanmean() / boundary_jump(gt, mask).nanmean())
    why = f"{bad} non-finite images" if bad else f"{len(x)} < {fd_min} images" if len(x) < fd_min else None
    out.update(fmnist_distances(x, gt) if why is None else
               dict.fromkeys(["fd_fmnist", "kd_fmnist", "kd_fmnist_std"], f"skipped ({why})"))
    return out


def machine(device: torch.device) -> dict:
    """Where the timings were taken."""
    cpu = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    d = dict(platform=platform.platform(), cpu=cpu, cpus=os.cpu_count(), cpus_usable=usable,
             torch_threads=torch.get_num_threads(), device=str(device))
    if device.type == "cuda":
        d["gpu"] = torch.cuda.get_device_name(device)
    return d


def git(*args, cwd: str):
    """git's output, or None where there is no git or it fails (e.g. cwd is in no checkout)."""
    try:
        r = subprocess.run(["git", "-C", cwd, *args], capture_output=True, text=True)
    except OSError:
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def versions() -> dict:
    """The software; git_commit and git_dirty are those of the checkout this code runs from, None unless this
    file is tracked by one (an installed copy, even in a virtual environment inside a checkout, has none)."""
    here = os.path.abspath(__file__)
    root = git("rev-parse", "--show-toplevel", cwd=os.path.dirname(here))
    tracked = root is not None and git("ls-files", "--error-unmatch", here, cwd=root) is not None
    commit = git("rev-parse", "HEAD", cwd=root) if tracked else None
    status = git("status", "--porcelain", "--untracked-files=no", cwd=root) if tracked else None
    return dict(python=platform.python_version(), torch=torch.__version__, numpy=np.__version__, aid=aid.__version__,
                aid_ext=aid_ext.__version__, aid_ext_build=aid_ext.build_info(), git_commit=commit,
                git_dirty=None if status is None else bool(status))


def measure(c: dict, fn, net, gt, mask, seeds, s: Settings, run: int) -> tuple[dict, torch.Tensor]:
    """Run one cell (c: mask, method, num_steps, targets, default) on the first n images; (its record, outputs)."""
    hp = hyperparameters(fn)
    c = dict(c, cost=cost(c["method"], c["num_steps"], hp))
    n = s.images if c["cost"] <= s.expensive_cost else min(s.images, s.expensive_images)
    x, report, seconds = run_cell(fn, net, gt[:n], mask[:n], seeds[:n], c["num_steps"], s.batch)
    if report["nfe"] + report["vjp"] != c["cost"]:
        raise RuntimeError(f"{key_of(c)}: the report counts {report['nfe']} NFE + {report['vjp']} VJP, the NFE→steps "
                           f"rule predicts {c['cost']}; update cost() in {__file__}")
    return dict(c, nfe=report["nfe"], vjp=report["vjp"], images=n, hyperparameters=hp, report=report, batch=s.batch,
                run=run, seconds_total=seconds, seconds_per_image=seconds / n,
                **cell_metrics(x, gt[:n], mask[:n], s.fd_min_images)), x


def prepare(s: Settings):
    """(backbone, test images, samplers, skipped methods), or a BenchmarkError with the reason."""
    try:
        net = load(s.backbone, torch.device(s.device))
    except FileNotFoundError as e:
        hint = " (the bundled backbone is trained by `python -m aid.edm.train`; or pass --backbone)" \
            if s.backbone == DEFAULT_BACKBONE else ""
        raise BenchmarkError(f"{e}{hint}") from None
    if (net.img_channels, net.img_resolution) != (1, RES):
        raise BenchmarkError(f"the benchmark runs on Fashion-MNIST 1×{RES}×{RES}; {s.backbone} makes "
                             f"{net.img_channels}×{net.img_resolution}×{net.img_resolution} images")
    try:
        gt, _ = fashion_mnist("test", RES)
        methods, skipped = samplers(s.methods, net, deft=s.deft, aid=s.aid)
    except FileNotFoundError as e:  # Fashion-MNIST, or the module of --deft or --aid
        raise BenchmarkError(str(e)) from None
    return net, gt[:s.images], methods, skipped


def benchmark(s: Settings, skipped_methods: dict | None = None) -> dict:
    """Run the cells of s that s.out/results.json does not hold yet and write the results and reports there;
    returns the results dict. skipped_methods: method → reason, reported as skipped beside the methods s skips
    (e.g. `aid demo`'s AID while there is no guidance module to run it with). A reason to stop before running
    (a missing file, a results folder made with other settings) is a BenchmarkError."""
    net, gt, methods, skipped = prepare(s)
    skipped.update(skipped_methods or {})
    seeds = list(range(s.images))
    setup = dict(backbone_sha256=sha256_of(s.backbone), images=s.images, mask_set=f"aid.data.masks.benchmark_masks "
                 f"v{TEST_SET_VERSION}", fd_min_images=s.fd_min_images, expensive_cost=s.expensive_cost,
                 expensive_images=s.expensive_images, examples=s.examples,
                 modules={k: sha256_of(getattr(s, k)) for k in AMORTIZED if k in methods})
    os.makedirs(s.out, exist_ok=True)
    json_path, ex_path = os.path.join(s.out, "results.json"), os.path.join(s.out, "examples.safetensors")
    res = start_results(json_path, setup, s.resume)
    examples = load_file(ex_path) if os.path.exists(ex_path) else {}
    for folder in s.merge:
        merge_from(res, examples, folder)
    check_hyperparameters(res["cells"], methods)
    if s.merge and examples:
        atomic_write(ex_path, lambda tmp: save_file(examples, tmp))
    res["runs"].append(dict(date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"), args=asdict(s),
                            command=" ".join(sys.argv), machine=machine(device_of(net)), versions=versions()))
    res["skipped"] = {k: v for k, v in {**res["skipped"], **skipped}.items() if k not in methods}
    masks = {kind: benchmark_masks(kind, s.images, RES) for kind in s.masks}
    res.setdefault("hole_fraction", {}).update({k: float(1 - m.mean()) for k, m in masks.items()})
    todo = [dict(mask=kind, method=name, **pt) for kind in s.masks for name, fn in methods.items()
            for pt in points(name, fn, s.nfe, not s.no_default_nfe)]
    for c in todo:
        if key_of(c) in res["cells"]:
            add_roles(res["cells"][key_of(c)], c)
    todo = [c for c in todo if key_of(c) not in res["cells"]]
    print(f"{len(res['cells'])} cells already in {json_path}; {len(todo)} to run; skipped methods: "
          + ("; ".join(f"{k} ({v})" for k, v in res["skipped"].items()) or "none"), flush=True)
    if todo:  # an untimed warm-up call (allocator, cuDNN, thread pools)
        run_cell(METHODS["paste"], net, gt[:s.batch], masks[s.masks[0]][:s.batch], seeds[:s.batch], 2, s.batch)
    for c in (bar := tqdm(todo, desc="speed_quality cells", dynamic_ncols=True)):
        bar.set_postfix_str(key_of(c))
        res["cells"][key_of(c)], x = measure(c, methods[c["method"]], net, gt, masks[c["mask"]], seeds, s,
                                             run=len(res["runs"]) - 1)
        if s.examples:  # before the JSON, which is what marks the cell done
            examples[key_of(c)] = x[:s.examples].contiguous()
            atomic_write(ex_path, lambda tmp: save_file(examples, tmp))
        write_json(json_path, res)
    write_json(json_path, res)
    print(write_reports(res, examples, gt, s.out, s.example_nfe))
    print(f"wrote {', '.join(sorted(os.listdir(s.out)))} in {s.out}")
    return res


# The command line (`aid bench`, benchmarks/speed_quality.py, python -m aid.bench.run): it only parses.

DESCRIPTION = __doc__.split("\n\n")[0]
EPILOG = "Defaults in brackets are the full benchmark's; --quick changes those marked (quick: ...) unless given."


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The benchmark's flags, one per Settings field (and --quick); settings_from_args reads them."""
    p.add_argument("--out", required=True, help="folder for results.json/.md, the PNGs and examples.safetensors")
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, help="EDM .safetensors or .pkl [the bundled one]")
    p.add_argument("--methods", nargs="+", choices=ALL_METHODS, metavar="METHOD",
                   help=f"from {', '.join(ALL_METHODS)} [all] (quick: {' '.join(QUICK['methods'])})")
    p.add_argument("--nfe", nargs="+", type=int, help="target costs (NFE + VJP) [5 9 19 35] (quick: 5 9)")
    p.add_argument("--masks", nargs="+", choices=KINDS, metavar="KIND",
                   help=f"aid.data.masks kinds, from {', '.join(KINDS)} [{' '.join(DEFAULTS['masks'])}] "
                        f"(quick: {' '.join(QUICK['masks'])})")
    p.add_argument("--images", type=int, help="test images per cell [1000] (quick: 8)")
    p.add_argument("--batch", type=int, help="images per sampler call [64] (quick: 8)")
    p.add_argument("--fd-min-images", type=int, help="report FD/KD_fmnist only with so many images [1000] (quick: 8)")
    p.add_argument("--no-default-nfe", action="store_true", default=None,
                   help="leave out each method's default num_steps (quick: left out)")
    p.add_argument("--expensive-cost", type=int, default=1000, help="cells costing more than this per image ...")
    p.add_argument("--expensive-images", type=int, default=250, help="... use at most so many images [250]")
    p.add_argument("--deft", metavar="PATH", help="DEFT's trained h-transform (h.safetensors); else DEFT is skipped")
    p.add_argument("--aid", metavar="PATH", help="AID's trained guidance module [the bundled one, if there is one and "
                   "--backbone is the bundled one]; without one AID is skipped")
    p.add_argument("--examples", type=int, default=3, help="example images per mask kind in examples.png [3]")
    p.add_argument("--example-nfe", type=int, default=19, help="examples.png shows each method at this cost [19]")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--resume", action="store_true", help="keep the cells already in OUT/results.json, run the rest")
    p.add_argument("--merge", nargs="+", default=[], metavar="FOLDER",
                   help="first fold in the cells of other --out folders made with the same settings")
    p.add_argument("--quick", action="store_true", help="the one-minute smoke version")


def settings_from_args(a: argparse.Namespace) -> Settings:
    """The Settings of parsed flags: a flag not given takes the full benchmark's default (DEFAULTS), or with
    --quick the smoke version's (QUICK); --aid defaults to the bundled guidance module on the bundled backbone.
    A bad flag is a ValueError naming it."""
    explicit = set(a.methods or [])
    given = {f.name: getattr(a, f.name) for f in fields(Settings)}
    if a.aid is None and a.backbone == DEFAULT_BACKBONE and os.path.exists(DEFAULT_GUIDANCE):
        given["aid"] = DEFAULT_GUIDANCE
    for k, v in (QUICK if a.quick else DEFAULTS).items():
        if given[k] is None:
            given[k] = v
    for name in explicit & set(AMORTIZED):
        if given[name] is None:
            raise ValueError(f"--methods {name} needs {AMORTIZED[name][0]} PATH (a trained module)")
    return Settings(**given)


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command line (prog: the name in its usage and errors)."""
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG)
    add_arguments(p)
    return p


def parse_args(argv=None, p: argparse.ArgumentParser | None = None) -> Settings:
    """The Settings of a command line; a bad flag exits as a usage error of p (parser())."""
    p = p or parser()
    try:
        return settings_from_args(p.parse_args(argv))
    except ValueError as e:
        p.error(str(e))


def main(argv=None, prog: str | None = None) -> None:
    """Parse, then run; a reason to stop exits as `PROG: error: reason` (prog: the name in usage and errors)."""
    p = parser(prog)
    s = parse_args(argv, p)
    try:
        benchmark(s)
    except BenchmarkError as e:
        raise SystemExit(f"{p.prog}: error: {e}") from None


if __name__ == "__main__":
    main()
