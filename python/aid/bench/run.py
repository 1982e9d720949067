"""The speed–quality benchmark: every inpainting method × cost × mask type on held-out
Fashion-MNIST test images, all on the same frozen EDM backbone.

    aid bench --out runs/sq                 # the full sweep (a GPU job); also python benchmarks/speed_quality.py
    aid bench --out runs/sq --resume        # continue it, or add cells
    aid bench --out runs/sq --resume --merge runs/sq_b   # fold in cells another process ran
    aid bench --out /tmp/sq --quick         # the one-minute smoke version

Fixed, so that reruns and other machines compare:
- images: Fashion-MNIST test images 0 … N−1 at 32×32 in [-1, 1]; image i is inpainted from
  y = m_i ⊙ x_i (the hole zeroed: nothing of the truth leaks) with seed i, by every method;
- masks: m_i = aid.data.masks.benchmark_masks(kind, N, 32)[i], the versioned test-mask set;
- metrics per cell, on the outputs clipped to [-1, 1]: mean and std over images of hole PSNR
  (the tables add ± its standard error), whole-image PSNR, SSIM and hole MSE; FD_fmnist and
  KD_fmnist (the bundled Fashion-MNIST classifier's features: not FID/KID; KD is the unbiased
  estimate, so it can be < 0 on small sets) between the cell's outputs and the same ground-truth
  images, only when the cell has >= --fd-min-images images (default 1,000); seconds per image:
  wall clock of the sampler calls only (batched, CUDA synchronized, after an untimed warm-up)
  over the number of images; the largest |x − y| on known pixels (0 for a method that pastes).

Cost = NFE + VJP per image (a vector–Jacobian product through the backbone counts as one more
evaluation). A target cost T becomes num_steps by one rule for every method: num_steps is the
smallest N whose cost(N) is nearest to T, where
  cost(N) = N    for Euler/DDIM-type methods (paste, replacement, ddnm, diffpir, deft, aid);
  cost(N) = 2N   for dps and pigdm (1 NFE + 1 VJP per step);
  cost(N) = the forward steps of RePaint's jump schedule at the function's own jump_length and
                 jump_n_sample (10, 10): N for N <= 10, then N + 90·⌊(N − 1)/10⌋. RePaint cannot
                 resample below 11 steps (101 NFE): targets 19 and 35 snap to N = 10.
Targets that snap to the same N are run once. Each method's own default num_steps (from its
function signature) is an extra point (not with --quick). Each run checks the cost counted in the
method's report against this rule. Cells costing more than --expensive-cost (default 1,000) use
at most --expensive-images (default 250) images, as their "images" entry states. Every other
hyperparameter is the function's default, recorded per cell; a --resume or --merge whose cells
of one method have different hyperparameters is refused.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

import aid
import aid_ext
from aid.baselines import METHODS, defaults, repaint_nfe
from aid.baselines.deft import HOW_TO_TRAIN
from aid.bench.report import ALL_METHODS, key_of, write_reports
from aid.core.checkpoint import atomic_write, sha256_of
from aid.core.common import device_of
from aid.data.datasets import fashion_mnist
from aid.data.masks import KINDS, TEST_SET_VERSION, benchmark_masks
from aid.edm import DEFAULT_BACKBONE, load
from aid.eval.metrics import fmnist_distances, hole_mse, psnr, ssim
from aid.guidance.sample import DEFAULT_GUIDANCE
from aid.inpaint import load_sampler

VJP_PER_STEP = {"dps", "pigdm"}
AMORTIZED = {  # methods that need a trained module: the option that gives it, and how to get one
    "deft": ("--deft", HOW_TO_TRAIN),
    "aid": ("--aid", "AID is only reported from a trained guidance module "
            "(aid.guidance.networks.GuidanceModule checkpoint; "
                     "train one with `aid train`)")}
RES = 32  # Fashion-MNIST padded to 32×32: the FD_fmnist classifier's input
DEFAULTS = dict(methods=ALL_METHODS, nfe=[5, 9, 19, 35], masks=["center_box", "pixels70", "lama_medium", "half_right"],
                images=1000, batch=64, fd_min_images=1000, no_default_nfe=False)
QUICK = dict(methods=["paste", "ddnm", "repaint", "pigdm"], nfe=[5, 9], masks=["center_box", "pixels70"], images=8,
             batch=8, fd_min_images=8, no_default_nfe=True)
RULES = __doc__[__doc__.index("Fixed, so that"):]  # written into results.json and results.md


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


class BenchmarkError(Exception):
    """A reason to stop before running (main reports it as `PROG: error: reason`, exit status 1)."""


def samplers(a, net) -> tuple[dict, dict]:
    """(name → sampler(net, y, mask, seeds, num_steps=…), name → why it is skipped) for a.methods. DEFT and
    AID run from their trained modules (aid.inpaint.load_sampler; AID with Euler steps, then the paste)."""
    run, skipped = {}, {}
    for name in a.methods:
        path = getattr(a, name) if name in AMORTIZED else None
        if name in AMORTIZED and path is None:
            option, how = AMORTIZED[name]
            skipped[name] = f"no {option} PATH given: {how}"
        else:
            run[name] = load_sampler(name, net, path)
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
    """The quality numbers of one cell (see the module docstring). Non-finite outputs are counted and
    left in (their metrics come out NaN), and FD/KD_fmnist is skipped for such a cell."""
    bad = int((~torch.isfinite(x)).flatten(1).any(1).sum())
    out = {"known_max_abs_err": float(torch.where(mask.bool(), x - gt, 0).abs().max()), "non_finite_images": bad}
    x = x.clamp(-1, 1)
    per_image = {"hole_psnr": psnr(x, gt, 1 - mask), "psnr": psnr(x, gt), "ssim": ssim(x, gt),
                 "hole_mse": hole_mse(x, gt, mask)}
    for k, v in per_image.items():
        out[k], out[f"{k}_std"] = float(v.double().mean()), float(v.double().std())
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


def setup_differences(old: dict, new: dict) -> list[str]:
    """What differs between two runs' settings (a trained module may be added, not swapped)."""
    differ = [f"{k} ({old.get(k)!r} there, {v!r} now)" for k, v in new.items() if k != "modules" and old.get(k) != v]
    changed = [k for k, v in new["modules"].items() if old["modules"].get(k, v) != v]
    return differ + [f"the {k} module (another file)" for k in changed]


def start_results(path: str, setup: dict, resume: bool) -> dict:
    """A fresh results dict, or with --resume the one in path after checking it was made the same way."""
    if not os.path.exists(path):
        return dict(benchmark="speed_quality", setup=setup, rules=RULES, runs=[], skipped={}, cells={})
    if not resume:
        raise BenchmarkError(f"{path} exists; pass --resume to continue it, or choose another --out")
    with open(path) as f:
        res = json.load(f)
    differ = setup_differences(res["setup"], setup)
    if differ:
        raise BenchmarkError(f"--resume: {path} was made with other settings: {'; '.join(differ)}; "
                             f"use another --out")
    res["setup"]["modules"].update(setup["modules"])
    return res


def add_roles(cell: dict, other: dict) -> None:
    """Give a measured cell the targets and the default flag of another request for the same setting (RePaint's
    nearest cost to both 19 and 35 is 10 steps: one cell serves both targets)."""
    cell["targets"] = sorted(set(cell["targets"]) | set(other["targets"]))
    cell["default"] = cell["default"] or other["default"]


def run_index(runs: list[dict], run: dict) -> int:
    """The index of run in runs, appending it if it is not there: a folder merged back into one it was merged
    from (e.g. one that ran only the missing cells) carries copies of that folder's runs, listed once."""
    if run not in runs:
        runs.append(run)
    return runs.index(run)


def merge_from(res: dict, examples: dict, folder: str) -> None:
    """Fold in the cells of another results folder made with the same settings (e.g. part of the grid run
    by another process or machine); cells already in res are kept (with the other's targets added)."""
    with open(os.path.join(folder, "results.json")) as f:
        other = json.load(f)
    differ = setup_differences(other["setup"], res["setup"]) + setup_differences(res["setup"], other["setup"])
    if differ:
        raise BenchmarkError(f"--merge: {folder} was made with other settings: {'; '.join(differ)}")
    index = [run_index(res["runs"], r) for r in other["runs"]]
    new = {k: dict(c, run=index[c["run"]]) for k, c in other["cells"].items() if k not in res["cells"]}
    for k in other["cells"].keys() & res["cells"].keys():
        add_roles(res["cells"][k], other["cells"][k])
    res["cells"].update(new)
    res["setup"]["modules"].update(other["setup"]["modules"])
    res.setdefault("hole_fraction", {}).update(other.get("hole_fraction", {}))
    ex_path = os.path.join(folder, "examples.safetensors")
    if os.path.exists(ex_path):
        examples.update({k: v for k, v in load_file(ex_path).items() if k in new})
    print(f"merged {len(new)} cells from {folder}", flush=True)


def write_json(path: str, obj) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1)  # NaN stays NaN (a diverged method), never 0
    atomic_write(path, write)


def parser(prog: str | None = None, parser_class=argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The command line (prog: the name in its usage and errors; parser_class: e.g. one with one-line errors)."""
    p = parser_class(prog=prog, description=__doc__.split("\n\n")[0], epilog="Defaults in brackets are the full "
                     "benchmark's; --quick changes those marked (quick: ...) unless given.")
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
    return p


def parse_args(argv, p: argparse.ArgumentParser | None = None):
    """The arguments, with the defaults filled in (DEFAULTS, or QUICK with --quick) and checked."""
    p = p or parser()
    a = p.parse_args(argv)
    explicit = set(a.methods or [])
    if a.aid is None and a.backbone == DEFAULT_BACKBONE and os.path.exists(DEFAULT_GUIDANCE):
        a.aid = DEFAULT_GUIDANCE
    for k, v in (QUICK if a.quick else DEFAULTS).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.methods, a.masks, a.nfe = (list(dict.fromkeys(v)) for v in (a.methods, a.masks, a.nfe))
    for name in explicit & set(AMORTIZED):
        if getattr(a, name) is None:
            p.error(f"--methods {name} needs {AMORTIZED[name][0]} PATH (a trained module)")
    if a.images < 2 or a.batch < 1 or a.fd_min_images < 2 or min(a.nfe) < 1 or a.expensive_images < 2:
        p.error("need --images >= 2, --batch >= 1, --fd-min-images >= 2, every --nfe >= 1, --expensive-images >= 2")
    if a.examples < 0:
        p.error(f"--examples must be >= 0, got {a.examples}")
    a.examples = min(a.examples, a.images)
    return a


def hyperparameters(fn) -> dict:
    """A sampler's hyperparameters as a cell records them: its defaults other than num_steps."""
    return {k: v for k, v in defaults(fn).items() if k != "num_steps" and isinstance(v, (int, float, str))}


def check_hyperparameters(cells: dict, methods: dict) -> None:
    """Every cell of a method has the same hyperparameters, and for the methods of this call those of its sampler
    now: a default changed between a run and its --resume or --merge would otherwise mix settings in one curve."""
    want = {name: hyperparameters(fn) for name, fn in methods.items()}
    for k, c in cells.items():
        have = want.setdefault(c["method"], c["hyperparameters"])
        if c["hyperparameters"] != have:
            raise BenchmarkError(f"{k} was measured with {c['method']} hyperparameters {c['hyperparameters']}, "
                                 f"other cells or the sampler now have {have}; use a new --out")


def measure(c: dict, fn, net, gt, mask, seeds, a, run: int) -> tuple[dict, torch.Tensor]:
    """Run one cell (c: mask, method, num_steps, targets, default) on the first n images; (its record, outputs)."""
    hp = hyperparameters(fn)
    c = dict(c, cost=cost(c["method"], c["num_steps"], hp))
    n = a.images if c["cost"] <= a.expensive_cost else min(a.images, a.expensive_images)
    x, report, seconds = run_cell(fn, net, gt[:n], mask[:n], seeds[:n], c["num_steps"], a.batch)
    if report["nfe"] + report["vjp"] != c["cost"]:
        raise RuntimeError(f"{key_of(c)}: the report counts {report['nfe']} NFE + {report['vjp']} VJP, the NFE→steps "
                           f"rule predicts {c['cost']}; update cost() in {__file__}")
    return dict(c, nfe=report["nfe"], vjp=report["vjp"], images=n, hyperparameters=hp, report=report, batch=a.batch,
                run=run, seconds_total=seconds, seconds_per_image=seconds / n,
                **cell_metrics(x, gt[:n], mask[:n], a.fd_min_images)), x


def prepare(a):
    """(backbone, test images, samplers, skipped methods), or exit with the reason."""
    try:
        net = load(a.backbone, torch.device(a.device))
    except FileNotFoundError as e:
        hint = " (the bundled backbone is trained by `python -m aid.edm.train`; or pass --backbone)" \
            if a.backbone == DEFAULT_BACKBONE else ""
        raise BenchmarkError(f"{e}{hint}") from None
    if (net.img_channels, net.img_resolution) != (1, RES):
        raise BenchmarkError(f"the benchmark runs on Fashion-MNIST 1×{RES}×{RES}; {a.backbone} makes "
                             f"{net.img_channels}×{net.img_resolution}×{net.img_resolution} images")
    try:
        gt, _ = fashion_mnist("test", RES)
        methods, skipped = samplers(a, net)
    except FileNotFoundError as e:  # Fashion-MNIST, or the module of --deft or --aid
        raise BenchmarkError(str(e)) from None
    return net, gt[:a.images], methods, skipped


def main(argv=None, skipped_methods: dict | None = None, prog: str | None = None,
         parser_class=argparse.ArgumentParser):
    """skipped_methods: method → reason, reported as skipped beside those of --methods (for callers such
    as `aid demo`, which reports AID while there is no guidance module to run it with). prog and
    parser_class: the command's name and parser (parser()); a reason to stop exits as `PROG: error: reason`."""
    p = parser(prog, parser_class)
    a = parse_args(argv, p)
    try:
        benchmark(a, skipped_methods or {})
    except BenchmarkError as e:
        raise SystemExit(f"{p.prog}: error: {e}") from None


def benchmark(a, skipped_methods: dict) -> None:
    """The benchmark of parsed arguments a (main)."""
    net, gt, methods, skipped = prepare(a)
    skipped.update(skipped_methods)
    seeds = list(range(a.images))
    setup = dict(backbone_sha256=sha256_of(a.backbone), images=a.images, mask_set=f"aid.data.masks.benchmark_masks "
                 f"v{TEST_SET_VERSION}", fd_min_images=a.fd_min_images, expensive_cost=a.expensive_cost,
                 expensive_images=a.expensive_images, examples=a.examples,
                 modules={k: sha256_of(getattr(a, k)) for k in AMORTIZED if k in methods})
    os.makedirs(a.out, exist_ok=True)
    json_path, ex_path = os.path.join(a.out, "results.json"), os.path.join(a.out, "examples.safetensors")
    res = start_results(json_path, setup, a.resume)
    examples = load_file(ex_path) if os.path.exists(ex_path) else {}
    for folder in a.merge:
        merge_from(res, examples, folder)
    check_hyperparameters(res["cells"], methods)
    if a.merge and examples:
        atomic_write(ex_path, lambda tmp: save_file(examples, tmp))
    res["runs"].append(dict(date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"), args=vars(a),
                            command=" ".join(sys.argv), machine=machine(device_of(net)), versions=versions()))
    res["skipped"] = {k: v for k, v in {**res["skipped"], **skipped}.items() if k not in methods}
    masks = {kind: benchmark_masks(kind, a.images, RES) for kind in a.masks}
    res.setdefault("hole_fraction", {}).update({k: float(1 - m.mean()) for k, m in masks.items()})
    todo = [dict(mask=kind, method=name, **pt) for kind in a.masks for name, fn in methods.items()
            for pt in points(name, fn, a.nfe, not a.no_default_nfe)]
    for c in todo:
        if key_of(c) in res["cells"]:
            add_roles(res["cells"][key_of(c)], c)
    todo = [c for c in todo if key_of(c) not in res["cells"]]
    print(f"{len(res['cells'])} cells already in {json_path}; {len(todo)} to run; skipped methods: "
          + ("; ".join(f"{k} ({v})" for k, v in res["skipped"].items()) or "none"), flush=True)
    if todo:  # an untimed warm-up call (allocator, cuDNN, thread pools)
        run_cell(METHODS["paste"], net, gt[:a.batch], masks[a.masks[0]][:a.batch], seeds[:a.batch], 2, a.batch)
    for c in (bar := tqdm(todo, desc="speed_quality cells", dynamic_ncols=True)):
        bar.set_postfix_str(key_of(c))
        res["cells"][key_of(c)], x = measure(c, methods[c["method"]], net, gt, masks[c["mask"]], seeds, a,
                                             run=len(res["runs"]) - 1)
        if a.examples:  # before the JSON, which is what marks the cell done
            examples[key_of(c)] = x[:a.examples].contiguous()
            atomic_write(ex_path, lambda tmp: save_file(examples, tmp))
        write_json(json_path, res)
    write_json(json_path, res)
    print(write_reports(res, examples, gt, a.out, a.example_nfe))
    print(f"wrote {', '.join(sorted(os.listdir(a.out)))} in {a.out}")


if __name__ == "__main__":
    main()
