"""The `aid` command: it only parses, then calls the library (aid.edm, aid.baselines, aid.inpaint,
aid.guidance.train, aid.bench.run). Every subcommand is one pair, add_arguments(parser) and run(args)
(SUBCOMMANDS); `aid SUBCOMMAND --help` describes each one.

    aid demo --out demo                      the main job: AID and the baselines on the bundled model
    aid inpaint IMAGE... --mask MASK... --out DIR [--method aid] [--backbone PKL] [--guidance PATH]
    aid train --run-dir runs/aid --iters 20000          (torchrun --nproc_per_node=N -m aid train ...)
    aid curves RUN... --out curves.png                   (training curves from RUN/log.jsonl)
    aid train-backbone | bench | convert | info

Bad input stops with one line, `aid SUBCOMMAND: error: ...`, and a non-zero exit code; `aid --debug ...`
shows the traceback instead. Ctrl-C stops with one line too (exit status 130). What is checked: docs/cli.md.
"""
from __future__ import annotations

import argparse
import os
import sys

from aid.bench import run as bench
from aid.bench.settings import Settings
from aid.core.checkpoint import writable_dir
from aid.data.masks import KINDS
from aid.edm import check_device
from aid.edm import train as edm_train
from aid.edm2 import options as edm2_options
from aid.guidance import curves
from aid.guidance import train as train_aid
from aid.methods import NAMES, SHARP_SCALE, module_key

DEMO_MASKS = ["center_box", "random_box", "pixels70", "half_bottom", "lama_medium"]  # one per mask family
DEMO_METHODS = ["paste", "replacement", "ddnm", "dps", "aid", "aid_sharp", "aid_sharp_ancestral"]
NO_BUNDLED_GUIDANCE = "no bundled guidance module yet"


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (`prog: error: message`)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


class UsageError(Exception):
    """Flags that parse but do not go together (found by a run(args)): reported as a usage error, like argparse's
    own (`aid SUBCOMMAND: error: ...`, exit status 2)."""


def no_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of a subcommand that takes none."""


def run_info(a) -> None:
    import torch

    import aid_ext
    from aid import __version__
    from aid.data.datasets import fashion_mnist_dir
    from aid.edm import DEFAULT_BACKBONE
    from aid.guidance.sample import BUNDLED_GUIDANCE, bundled_guidance
    b = aid_ext.build_info()
    gpu = (f"{torch.cuda.device_count()} GPU(s), {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
           else f"no GPU; CPU with {torch.get_num_threads()} torch threads")
    try:
        fmnist = fashion_mnist_dir()
    except FileNotFoundError:
        fmnist = "not found (apt-get install dataset-fashion-mnist, or set AID_FASHION_MNIST)"
    rows = [("aid", __version__), ("aid_ext", aid_ext.__version__), ("torch (running)", torch.__version__),
            ("built for torch", b["torch_version"]), ("CUDA kernels", "on" if b["with_cuda"] else "off"),
            ("CUDA version", b["cuda_version"] or "-"), ("CUDA archs", b["cuda_archs"] or "-"),
            ("compiler", b["compiler"]), ("device seen", gpu),
            ("bundled backbone", DEFAULT_BACKBONE if os.path.exists(DEFAULT_BACKBONE) else "missing"),
            *((f"bundled {key}", bundled_guidance(key) or NO_BUNDLED_GUIDANCE) for key in BUNDLED_GUIDANCE),
            ("Fashion-MNIST", fmnist)]
    for k, v in rows:
        print(f"{k + ':':18} {v}")


def add_convert_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pkl", help="an official NVlabs/edm snapshot, downloaded by you")
    p.add_argument("out", help="the .safetensors file to write (never the input)")


def run_convert(a) -> None:
    from aid.core.nn import n_params
    from aid.edm import convert, load
    if not os.path.isfile(a.pkl):
        raise FileNotFoundError(f"PKL: no such file: {a.pkl} (download the official checkpoint yourself first)")
    convert(a.pkl, a.out)  # refuses OUT = PKL and an OUT not ending in .safetensors before reading anything
    net = load(a.out)
    print(f"wrote {a.out}: EDMPrecond, {net.img_channels}×{net.img_resolution}×{net.img_resolution} images, "
          f"{n_params(net):,} parameters")


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="aid-demo", help="results folder [aid-demo]; rerunning into it reuses its results")
    p.add_argument("--num-images", type=int, default=12, help="held-out test images per mask type [12]")
    p.add_argument("--masks", nargs="+", default=DEMO_MASKS, choices=KINDS, metavar="KIND",
                   help=f"mask types [{' '.join(DEMO_MASKS)}], from {', '.join(KINDS)}")
    p.add_argument("--methods", nargs="+", default=DEMO_METHODS, choices=NAMES, metavar="METHOD",
                   help=f"[{' '.join(DEMO_METHODS)}], from {', '.join(NAMES)}")
    p.add_argument("--nfe", nargs="+", type=int, default=[5, 9, 19], help="target costs, NFE + VJP per image [5 9 19]")
    p.add_argument("--guidance", help="AID's guidance module [the bundled one]; without one AID is reported skipped")
    p.add_argument("--guidance-sharp", help="the guidance module of AID's sharp settings (aid_sharp and its "
                   "variants) [the bundled one]; without one they are reported skipped")
    p.add_argument("--batch", type=int, help="images per sampler call [all of them]")
    p.add_argument("--examples", type=int, default=2, help="images per mask type in the comparison grid [2]")
    p.add_argument("--device", default="cpu", help="cpu or cuda [cpu]")


def run_demo(a) -> None:
    """The speed–quality benchmark (aid.bench.run.benchmark) at the demo's size, resumed in --out, without the
    methods' default step counts; AID with --guidance (aid_sharp: --guidance-sharp) or the bundled module, else
    reported skipped."""
    from aid.guidance.sample import BUNDLED_GUIDANCE, bundled_guidance  # a dict the tests point elsewhere
    methods, skipped, modules = list(dict.fromkeys(a.methods)), {}, {}
    for key, flag, given in (("aid", "--guidance", a.guidance), ("aid_sharp", "--guidance-sharp", a.guidance_sharp)):
        if given and not os.path.isfile(given):
            raise FileNotFoundError(f"{flag}: no such file: {given}")
        modules[key] = given or bundled_guidance(key)
        for m in [m for m in methods if module_key(m) == key and modules[key] is None]:
            methods.remove(m)
            skipped[m] = f"{NO_BUNDLED_GUIDANCE} ({BUNDLED_GUIDANCE[key]}); pass {flag} PATH from `aid train`"
    if not methods:
        raise ValueError("--methods: nothing to run")
    if a.num_images < 2 or min(a.nfe) < 1 or a.examples < 0 or (a.batch is not None and a.batch < 1):
        raise ValueError("need --num-images >= 2, every --nfe >= 1, --examples >= 0 and --batch >= 1")
    writable_dir(a.out, "--out")
    settings = Settings(out=a.out, methods=methods, masks=a.masks, nfe=a.nfe, images=a.num_images,
                        batch=a.batch or a.num_images, no_default_nfe=True, examples=a.examples,
                        example_nfe=sorted(a.nfe)[len(a.nfe) // 2],  # the median target
                        device=str(check_device(a.device)), resume=True,
                        **{k: path for k, path in modules.items() if k in map(module_key, methods)})
    bench.benchmark(settings, skipped_methods=skipped)
    print(f"\nThe demo's results are in {a.out}: examples.png (the comparison grid), results.md and results.json "
          "(the metrics), quality_vs_nfe.png and quality_vs_seconds.png (speed against quality).")


def add_inpaint_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", help="image files, or one folder, or one EDM dataset zip")
    masks = p.add_mutually_exclusive_group(required=True)
    masks.add_argument("--mask", nargs="+", metavar="PNG", help="one mask for all images, or one per image "
                       "(white = known; see --hole-white)")
    masks.add_argument("--mask-kind", choices=KINDS, metavar="KIND", help=f"generated masks, from {', '.join(KINDS)}")
    p.add_argument("--mask-seed", type=int, default=0, help="seed of --mask-kind [0]")
    p.add_argument("--hole-white", action="store_true", help="mask files are white = hole (LaMa's convention)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--method", default="aid", choices=NAMES, metavar="METHOD",
                   help=f"[aid], from {', '.join(NAMES)}")
    p.add_argument("--backbone", help="official EDM .pkl or aid .safetensors [the bundled Fashion-MNIST backbone]")
    p.add_argument("--guidance", help="trained module of aid (actor.safetensors from `aid train`) or deft "
                   "(h.safetensors) [aid: the bundled one]")
    p.add_argument("--steps", type=int, help="sampling steps [aid: the K the guidance module was trained with "
                   "(trained over several: 9 if among them, else the largest); a baseline: its own default]; "
                   "the averaging variants (aid_sharp_mean2, ...): per sample")
    p.add_argument("--solver", choices=["euler", "heun"], help="aid and deft only [aid: the guidance module's "
                   "training solver; deft: euler]")
    p.add_argument("--guidance-scale", type=float, help="aid only: multiplies the guidance field; below 1 is "
                   f"sharper and less faithful, 0 is unguided + paste [1; aid_sharp*: {SHARP_SCALE:g}]")
    p.add_argument("--seed", type=int, default=0, help="image i is drawn with seed + i [0]")
    p.add_argument("--batch", type=int, default=64, help="images per sampler call [64]")
    p.add_argument("--device", default="cpu", help="cpu or cuda [cpu]")
    p.add_argument("--grid", action="store_true", help="also write OUT/grid.png: masked input | output | input")
    edm2_options.add_arguments(p)


def run_inpaint(a) -> None:
    from aid.inpaint import inpaint
    edm2_options.check(a)
    inpaint(a.images, a.out, mask=a.mask, mask_kind=a.mask_kind, mask_seed=a.mask_seed, hole_white=a.hole_white,
            method=a.method, backbone=a.backbone, guidance=a.guidance, steps=a.steps, solver=a.solver,
            guidance_scale=a.guidance_scale, seed=a.seed, batch=a.batch, device=check_device(a.device), grid=a.grid,
            vae=a.vae, guide=a.guide, guidance_weight=a.guidance_weight, class_labels=a.class_labels)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    train_aid.add_arguments(p)
    edm2_options.add_arguments(p)


def run_train(a) -> None:
    """aid.guidance.train's run; with --vae on EDM2's latents (aid.latent.training_problem)."""
    edm2_options.check(a)
    if a.vae:
        from aid.latent import training_problem
        train_aid.run(a, training_problem)
    else:
        train_aid.run(a)


def run_bench(a) -> None:
    try:
        settings = bench.settings_from_args(a)
    except ValueError as e:
        raise UsageError(e) from None
    writable_dir(settings.out, "--out")
    check_device(settings.device)
    bench.benchmark(settings)


SUBCOMMANDS = {  # name: (its line in `aid --help`, add_arguments(parser), run(args), more parser keywords)
    "demo": ("the main job: AID and the baselines on held-out Fashion-MNIST, with each mask type, at a few NFE; "
             "writes the comparison grid, a metrics table and the speed–quality plot", add_demo_arguments, run_demo,
             {}),
    "inpaint": ("inpaint your images: files, a folder or an EDM zip, with mask files or a mask generator; writes "
                "PNGs of the same size", add_inpaint_arguments, run_inpaint, {}),
    "train": ("train AID's guidance module (`torchrun --nproc_per_node=N -m aid train ...` for many GPUs; the flags "
              "of aid.guidance.train; --vae: in EDM2's latent space)", add_train_arguments, run_train,
              dict(description=train_aid.DESCRIPTION)),
    "curves": ("plot training runs' curves (cost, |δ|, seconds per iteration) from their log.jsonl",
               curves.add_arguments, curves.run, {}),
    "train-backbone": ("train an EDM backbone on Fashion-MNIST 32×32 (as the bundled one; `aid train-backbone "
                       "--help`)", edm_train.add_arguments, edm_train.run, dict(description=edm_train.DESCRIPTION)),
    "bench": ("the speed–quality benchmark, every method × NFE × mask (`aid bench --help`)", bench.add_arguments,
              run_bench, dict(description=bench.DESCRIPTION, epilog=bench.EPILOG)),
    "convert": ("official EDM .pkl → aid .safetensors (read safely, never unpickled)", add_convert_arguments,
                run_convert, {}),
    "info": ("versions, build (CUDA on/off, archs, torch it was built for), devices seen", no_arguments, run_info,
             {}),
}


def parser() -> Parser:
    p = Parser(prog="aid", description="AID: Amortized Inpainting with Diffusion on frozen EDM backbones.",
               epilog="`aid SUBCOMMAND --help` for the options of each.")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    for name, (text, add_arguments, run, more) in SUBCOMMANDS.items():
        s = sub.add_parser(name, help=text, **more)
        add_arguments(s)
        s.set_defaults(run=run)
    return p


INTERRUPTED = {  # what Ctrl-C leaves, per subcommand: one line, no traceback
    "train": "the last snapshot in --run-dir is kept; run the same command again to resume from it",
    "train-backbone": "the last snapshot in --run-dir is kept; run the same command again to resume from it",
    "demo": "the finished cells in --out are kept; run the same command again to go on",
    "bench": "the finished cells in --out are kept; run it again with --resume to go on",
    "inpaint": "the PNGs are written only after all sampling, each whole or not at all",
}


def main(argv=None) -> int:
    a = parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        a.run(a)
    except KeyboardInterrupt:
        if a.debug:
            raise
        more = INTERRUPTED.get(a.command)
        print(f"aid {a.command}: interrupted{'; ' + more if more else ''}", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except UsageError as e:  # as argparse reports its own
        print(f"aid {a.command}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as e:
        if a.debug:
            raise
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"aid {a.command}: error: {message} (aid --debug {a.command} ... shows the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
