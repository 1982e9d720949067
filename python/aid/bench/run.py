"""The speed–quality benchmark: every inpainting method × cost × mask type on held-out
Fashion-MNIST test images, all on the same frozen EDM backbone.

    aid bench --out runs/sq                 # the full sweep (a GPU job); also python benchmarks/speed_quality.py
    aid bench --out runs/sq --resume        # continue it, or add cells
    aid bench --out runs/sq --resume --merge runs/sq_b   # fold in cells another process ran
    aid bench --out runs/sq --resume --merge runs/sq_c --replace   # ... and replace cells it measured again
    aid bench --out /tmp/sq --quick         # the one-minute smoke version
    torchrun --nproc_per_node=N -m aid bench --out runs/sq   # the same, shared by N processes (or GPUs, machines)

The rules every run keeps (images, masks, metrics, and how a target cost becomes num_steps) are
aid.bench.settings.RULES, written into results.json and results.md; aid.bench.cells implements its cost rule
(cost, steps_for), runs a sampler on a range of images and measures a cell. The results file's bookkeeping (resume,
merge) is aid.bench.results; how the work is shared by processes (torchrun) and kept while a cell is in progress,
aid.bench.shard.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from dataclasses import asdict, fields

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from aid.baselines import METHODS, defaults  # noqa: F401 (defaults, steps_for: still importable from here)
from aid.baselines.deft import HOW_TO_TRAIN
from aid.bench import cells
from aid.bench import latent as latent_bench
from aid.bench.cells import RES, cell_metrics, cost, points, run_cell, steps_for  # noqa: F401
from aid.bench.provenance import machine, portable, versions
from aid.bench.report import key_of, shown_cells, write_reports
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
from aid.bench.shard import agree, chunks, drop_parts, load_parts, part_meta, run_rounds, save_part
from aid.core.checkpoint import atomic_write, sha256_of
from aid.core.distributed import broadcast_object, gather_objects, rank_and_world
from aid.data.datasets import fashion_mnist
from aid.data.masks import KINDS, TEST_SET_VERSION, benchmark_masks
from aid.edm import DEFAULT_BACKBONE, load
from aid.guidance.distributed import init_distributed
from aid.guidance.sample import BUNDLED_GUIDANCE, bundled_guidance
from aid.latent import NotInLatentSpace
from aid.methods import load_sampler, module_key

AMORTIZED = {  # methods that need a trained module: the option that gives it, and how to get one
    "deft": ("--deft", HOW_TO_TRAIN),
    "aid": ("--aid", "AID is only reported from a trained guidance module "
                     "(aid.guidance.networks.GuidanceModule checkpoint; train one with `aid train`)"),
    "aid_sharp": ("--aid-sharp", "AID's sharp setting is only reported from its trained guidance module "
                                 "(train one with `aid train --objective denoising`)")}


def samplers(methods: list[str], net, **modules: str | None) -> tuple[dict, dict]:
    """(name → sampler(net, y, mask, seeds, num_steps=…), name → why it is skipped) for methods. DEFT and AID run
    from their trained modules, modules[aid.methods.module_key(name)]: the paths deft, aid and aid_sharp (AID's
    sharp setting), the keys of AMORTIZED (aid.methods.load_sampler); without one they are skipped."""
    run, skipped = {}, {}
    for name in methods:
        key = module_key(name)
        if key in AMORTIZED and modules.get(key) is None:
            option, how = AMORTIZED[key]
            skipped[name] = f"no {option} PATH given: {how}"
        else:
            run[name] = load_sampler(name, net, modules.get(key))
    return run, skipped


def prepare(s: Settings, device: torch.device | None = None):
    """(backbone on device [s.device], test images, samplers, skipped methods), or a BenchmarkError with the
    reason. In latent space (LatentSettings) the samplers run on the EDM2 net's latents (aid.bench.latent)."""
    device = device or torch.device(s.device)
    if isinstance(s, latent_bench.LatentSettings):
        net, gt, wrap = latent_bench.prepare(s, device)
    else:
        (net, gt), wrap = prepare_pixels(s, device), lambda name, fn: fn
    try:
        methods, skipped = samplers(s.methods, net, **{k: getattr(s, k) for k in AMORTIZED})
    except FileNotFoundError as e:  # Fashion-MNIST, or the module of --deft, --aid or --aid-sharp
        raise BenchmarkError(str(e)) from None
    wrapped = {}
    for name, fn in methods.items():
        try:
            wrapped[name] = wrap(name, fn)
        except NotInLatentSpace as e:
            skipped[name] = str(e)
    return net, gt[:s.images], wrapped, skipped


def prepare_pixels(s: Settings, device: torch.device):
    """(the EDM backbone, Fashion-MNIST's test images), or a BenchmarkError."""
    try:
        net = load(s.backbone, device)
    except FileNotFoundError as e:
        hint = " (the bundled backbone is trained by `python -m aid.edm.train`; or pass --backbone)" \
            if s.backbone == DEFAULT_BACKBONE else ""
        raise BenchmarkError(f"{e}{hint}") from None
    if (net.img_channels, net.img_resolution) != (1, RES):
        raise BenchmarkError(f"the benchmark runs on Fashion-MNIST 1×{RES}×{RES}; {s.backbone} makes "
                             f"{net.img_channels}×{net.img_resolution}×{net.img_resolution} images")
    try:
        return net, fashion_mnist("test", RES)[0]
    except FileNotFoundError as e:
        raise BenchmarkError(str(e)) from None


class Ledger:
    """Rank 0's side of one benchmark call: results.json (started or resumed, other folders merged in, this run
    recorded, written at the start and after every cell), examples.safetensors, and the cells to run, whose chunks
    are kept in OUT/parts until the cell is measured (aid.bench.shard). items: the chunks still to run, the
    costliest cells first. machines: every rank's machine(), in rank order."""

    def __init__(self, s: Settings, methods: dict, skipped: dict, gt, masks: dict, machines: list[dict],
                 started: float, per_call: int = 1):
        self.s, self.gt, self.masks, self.started, self.world = s, gt, masks, started, len(machines)
        self.methods = set(methods)
        setup = dict(backbone_sha256=sha256_of(s.backbone), images=s.images, mask_set=f"aid.data.masks."
                     f"benchmark_masks v{TEST_SET_VERSION}", fd_min_images=s.fd_min_images,
                     expensive_cost=s.expensive_cost, expensive_images=s.expensive_images, examples=s.examples,
                     modules={k: sha256_of(getattr(s, k)) for k in AMORTIZED if k in map(module_key, methods)},
                     **latent_bench.setup(s, gt), **({"evals_per_call": per_call} if per_call > 1 else {}))
        os.makedirs(s.out, exist_ok=True)
        self.json_path, self.ex_path = os.path.join(s.out, "results.json"), os.path.join(s.out, "examples.safetensors")
        fresh = not os.path.exists(self.json_path)
        self.res = res = start_results(self.json_path, setup, s.resume, s.forget)
        if fresh:  # chunks left in a folder whose results.json is gone: made with unknown settings
            drop_parts(s.out)
        examples = load_file(self.ex_path) if os.path.exists(self.ex_path) else {}
        self.examples = {k: v for k, v in examples.items() if k in res["cells"]}  # none of a forgotten cell
        for folder in s.merge:
            merge_from(res, self.examples, folder, s.replace)
        check_hyperparameters(res["cells"], methods)
        if s.merge and self.examples:
            atomic_write(self.ex_path, lambda tmp: save_file(self.examples, tmp))
        run = dict(date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"), args=portable(asdict(s)),
                   command=" ".join(sys.argv), machine=machines[0], versions=versions(), processes=self.world)
        kinds = [{k: v for k, v in m.items() if k != "device"} for m in machines]
        others = [m for i, m in enumerate(kinds) if m != kinds[0] and m not in kinds[:i]]
        if others:  # ranks on other kinds of machines than rank 0 (not only another device index)
            run["other_machines"] = others
        res["runs"].append(run)
        res["skipped"] = {k: v for k, v in {**res["skipped"], **skipped}.items() if k not in methods}
        res.setdefault("hole_fraction", {}).update({k: float(1 - m.mean()) for k, m in masks.items()})
        todo = [dict(mask=kind, method=name, **pt) for kind in s.masks for name, fn in methods.items()
                for pt in latent_bench.grid_points(name, fn, s.nfe, not s.no_default_nfe, per_call)]
        for c in todo:
            if key_of(c) in res["cells"]:
                add_roles(res["cells"][key_of(c)], c)
        self.jobs = {}
        for c in (c for c in todo if key_of(c) not in res["cells"]):
            hp = hyperparameters(methods[c["method"]])
            c = dict(c, cost=per_call * cost(c["method"], c["num_steps"], hp))
            n = s.images if c["cost"] <= s.expensive_cost else min(s.images, s.expensive_images)
            self.jobs[key_of(c)] = dict(cell=c, hp=hp, n=n, chunks=chunks(n, s.batch))
        for key in res["cells"]:  # a run killed between a cell's record and the removal of its chunks
            drop_parts(s.out, key)
        self.done = {k: {r for r in j["chunks"] if (part_meta(s.out, k, *r) or {}).get("hyperparameters") == j["hp"]}
                     for k, j in self.jobs.items()}
        self.items = [dict(key=k, mask=j["cell"]["mask"], method=j["cell"]["method"],
                           num_steps=j["cell"]["num_steps"], start=a, end=b)
                      for k, j in sorted(self.jobs.items(), key=lambda kj: -kj[1]["cell"]["cost"])
                      for a, b in j["chunks"] if (a, b) not in self.done[k]]
        write_json(self.json_path, res)
        kept = sum(map(len, self.done.values()))
        print(f"{len(res['cells'])} cells already in {self.json_path}; {len(self.jobs)} to run; skipped methods: "
              + ("; ".join(f"{k} ({v})" for k, v in res["skipped"].items()) or "none"), flush=True)
        if self.jobs:
            print(f"{len(self.items)} chunks of up to {s.batch} images to run on {self.world} process"
                  + ("es" if self.world > 1 else "") + (f"; {kept} chunks kept from an earlier run" if kept else ""),
                  flush=True)
        self.finish_ready()

    def collect(self, items: list[dict], outputs: list[dict | None]) -> None:
        """Save the chunks of a round (None: the rank that ran it failed), then measure every cell now complete."""
        for it, o in zip(items, outputs):
            if o is not None:
                meta = dict(report=o["report"], seconds=o["seconds"], processes=self.world,
                            hyperparameters=self.jobs[it["key"]]["hp"])
                save_part(self.s.out, it["key"], it["start"], it["end"], o["x"], meta)
                self.done[it["key"]].add((it["start"], it["end"]))
        self.finish_ready()

    def finish_ready(self) -> None:
        for key in [k for k, j in self.jobs.items() if len(self.done[k]) == len(j["chunks"])]:
            self.finish(key)

    def finish(self, key: str) -> None:
        """Measure a cell from its chunks (outputs in image order: the same for any number of processes), record it
        in results.json (its example outputs first: the JSON is what marks the cell done), drop its chunks."""
        s, job = self.s, self.jobs.pop(key)
        c, n = job["cell"], job["n"]
        x, metas = load_parts(s.out, key, job["chunks"])
        report, seconds = metas[0]["report"], sum(m["seconds"] for m in metas)
        if report["nfe"] + report["vjp"] != c["cost"]:
            raise RuntimeError(f"{key}: the report counts {report['nfe']} NFE + {report['vjp']} VJP, the NFE→steps "
                               f"rule predicts {c['cost']}; update cost() in {cells.__file__}")
        self.res["cells"][key] = dict(
            c, nfe=report["nfe"], vjp=report["vjp"], images=n, hyperparameters=job["hp"], report=report,
            batch=s.batch, run=len(self.res["runs"]) - 1, seconds_total=seconds, seconds_per_image=seconds / n,
            processes=sorted({m["processes"] for m in metas}),
            **latent_bench.metrics(s, x, self.gt[:n], self.masks[c["mask"]][:n]))
        if s.examples:
            self.examples[key] = x[:s.examples].contiguous()
            atomic_write(self.ex_path, lambda tmp: save_file(self.examples, tmp))
        write_json(self.json_path, self.res)
        drop_parts(s.out, key)

    def fill_examples(self, outputs) -> None:
        """Examples for the cells of self.methods that examples.png shows and that have none (merged from a folder
        that kept none, or kept in an examples.safetensors since lost): a cell's outputs are a function of image i
        and seed i alone, so its first images are rerun by themselves.
        outputs(item) -> x runs a chunk (an item of self.items' form)."""
        k = self.s.examples
        todo = [c for c in shown_cells(self.res, self.s.example_nfe)
                if k and key_of(c) not in self.examples and c["method"] in self.methods]
        for c in tqdm(todo, desc="examples of merged cells", dynamic_ncols=True, disable=not todo):
            self.examples[key_of(c)] = outputs(dict(c, start=0, end=min(k, c["images"])))[:k].contiguous()
        if todo:
            atomic_write(self.ex_path, lambda tmp: save_file(self.examples, tmp))

    def close(self) -> None:
        """The run's wall clock into results.json, then the reports."""
        self.res["runs"][-1]["wall_seconds"] = time.perf_counter() - self.started
        write_json(self.json_path, self.res)
        print(write_reports(self.res, self.examples, self.gt, self.s.out, self.s.example_nfe))
        print(f"wrote {', '.join(sorted(os.listdir(self.s.out)))} in {self.s.out}")


def benchmark(s: Settings, skipped_methods: dict | None = None) -> dict:
    """Run the cells of s that s.out/results.json does not hold yet and write the results and reports there;
    returns the results dict. skipped_methods: method → reason, reported as skipped beside the methods s skips
    (e.g. `aid demo`'s AID while there is no guidance module to run it with). A reason to stop before running
    (a missing file, a results folder made with other settings) is a BenchmarkError.

    Under torchrun (WORLD_SIZE > 1: this call joins the process group and leaves it at the end; NCCL on the local
    GPU with --device cuda, else gloo with one torch thread per process unless OMP_NUM_THREADS says otherwise), or
    in a process group that is already initialised, the ranks share the work (aid.bench.shard): every rank runs
    its chunks of images, rank 0 alone writes OUT, and every rank returns the same results. The numbers are those
    of one process; each cell's "processes" says how many ran it."""
    started = time.perf_counter()
    own = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized()
    device = init_distributed(s.device) if own else torch.device(s.device)
    if device.type == "cuda" and device.index is None and dist.is_initialized():
        device = torch.device("cuda", torch.cuda.current_device())
    try:
        res = sharded_benchmark(s, dict(skipped_methods or {}), device, started)
        if own:
            dist.barrier()  # every rank done before any tears down (gloo can abort a rank whose peer left first)
        return res
    finally:
        if own:
            dist.destroy_process_group()


def sharded_benchmark(s: Settings, skipped_methods: dict, device: torch.device, started: float) -> dict:
    """benchmark(s) on this rank of the process group (one process: rank 0 of 1), on device."""
    rank, world = rank_and_world()
    if world > 1 and device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)  # the ranks share the cores
    prepared, error = None, None
    try:
        prepared = prepare(s, device)
    except BenchmarkError as e:
        error = e
    agree(error)
    net, gt, methods, skipped = prepared
    skipped.update(skipped_methods)
    seeds = list(range(s.images))
    masks = {kind: benchmark_masks(kind, s.images, gt.shape[-1]) for kind in s.masks}
    machines, ledger, error = gather_objects(machine(device)), None, None
    if rank == 0:
        try:
            ledger = Ledger(s, methods, skipped, gt, masks, machines, started, getattr(net, "evals_per_call", 1))
        except Exception as e:
            error = e
    agree(error)
    items = broadcast_object(ledger.items if rank == 0 else None)
    if rank < len(items):  # an untimed warm-up call (allocator, cuDNN, thread pools)
        run_cell(next(iter(methods.values())), net, gt[:s.batch], masks[s.masks[0]][:s.batch], seeds[:s.batch], 2,
                 s.batch)

    def work(it: dict) -> dict:
        a, b = it["start"], it["end"]
        x, report, seconds = run_cell(methods[it["method"]], net, gt[a:b], masks[it["mask"]][a:b], seeds[a:b],
                                      it["num_steps"], s.batch)
        return dict(x=x, report=report, seconds=seconds)

    bar = tqdm(total=len(items), desc="speed_quality chunks", dynamic_ncols=True, disable=rank != 0)

    def progress(done: list[dict]) -> None:
        bar.update(len(done))
        bar.set_postfix_str(done[0]["key"])
    run_rounds(items, work, ledger.collect if rank == 0 else None, progress)
    bar.close()
    if rank == 0:
        ledger.fill_examples(lambda it: work(it)["x"])
        ledger.close()
    return broadcast_object(ledger.res if rank == 0 else None)


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
    p.add_argument("--aid-sharp", metavar="PATH", help="the guidance module of AID's sharp settings (aid_sharp and its "
                   "variants) [the bundled one, as for --aid], run with its field scaled "
                   "by aid.methods.SHARP_SCALE; without one they are skipped")
    p.add_argument("--examples", type=int, default=3, help="example images per mask kind in examples.png [3]")
    p.add_argument("--example-nfe", type=int, default=19, help="examples.png shows each method at this cost [19]")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--resume", action="store_true", help="keep the cells already in OUT/results.json, run the rest")
    p.add_argument("--merge", nargs="+", default=[], metavar="FOLDER",
                   help="first fold in the cells of other --out folders made with the same settings")
    p.add_argument("--replace", action="store_true", help="with --merge: a merged cell replaces OUT's cell of the "
                   "same name (one measured again), instead of being ignored")
    p.add_argument("--forget", nargs="+", default=[], choices=ALL_METHODS, metavar="METHOD",
                   help="with --resume: first drop these methods' cells and examples from OUT, e.g. to measure AID "
                        "again with a retrained module (--forget aid aid_paste --aid NEW)")
    p.add_argument("--quick", action="store_true", help="the one-minute smoke version")
    latent_bench.add_arguments(p)


def settings_from_args(a: argparse.Namespace) -> Settings:
    """The Settings of parsed flags: a flag not given takes the full benchmark's default (DEFAULTS), or with
    --quick the smoke version's (QUICK); --aid and --aid-sharp default to the bundled guidance modules on the
    bundled backbone. A bad flag is a ValueError naming it."""
    explicit, cls = set(a.methods or []), latent_bench.settings_class(a)
    given = {f.name: getattr(a, f.name) for f in fields(cls)}
    for key in BUNDLED_GUIDANCE:
        if given[key] is None and a.backbone == DEFAULT_BACKBONE:
            given[key] = bundled_guidance(key)
    for k, v in (QUICK if a.quick else DEFAULTS).items():
        if given[k] is None:
            given[k] = v
    for name in explicit:
        key = module_key(name)
        if key in AMORTIZED and given[key] is None:
            raise ValueError(f"--methods {name} needs {AMORTIZED[key][0]} PATH (a trained module)")
    return cls(**given)


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
