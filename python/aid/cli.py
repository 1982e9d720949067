"""The `aid` command: thin front-ends over the library (aid.edm, aid.baselines, aid.guidance.sample,
aid.guidance.train, aid.bench.run). `aid SUBCOMMAND --help` describes each one.

    aid demo --out demo                      the main job: AID and the baselines on the bundled model
    aid inpaint IMAGE... --mask MASK... --out DIR [--method aid] [--backbone PKL] [--guidance PATH]
    aid train --run-dir runs/aid --iters 20000          (torchrun --nproc_per_node=N -m aid train ...)
    aid train-backbone | bench | convert | info

Bad input stops with one line, `aid SUBCOMMAND: error: ...`, and a non-zero exit code; `aid --debug ...`
shows the traceback instead.
"""
from __future__ import annotations

import argparse
import os
import sys

from aid.data.masks import KINDS

DEMO_MASKS = ["center_box", "random_box", "pixels70", "half_bottom", "lama_medium"]  # one per mask family
DEMO_METHODS = ["paste", "replacement", "ddnm", "dps", "aid"]
NO_BUNDLED_GUIDANCE = "no bundled guidance module yet"


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (`prog: error: message`)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def method_names() -> list[str]:
    from aid.baselines import METHODS
    return ["aid"] + list(METHODS)


def check_device(name: str):
    """torch.device(name), refused with the reason when this build or machine cannot run it."""
    import torch

    import aid_ext
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"--device {name!r}: {e}") from None
    if device.type == "cuda":
        info = aid_ext.build_info()
        if not info["with_cuda"]:
            raise ValueError(f"--device {name}: this aid_ext build is CPU-only "
                             f"(built for torch {info['torch_version']}); "
                             "rebuild with CUDA (README, 'Building with CUDA') or use --device cpu")
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: torch sees no GPU on this machine; use --device cpu")
    elif device.type != "cpu":
        raise ValueError(f"--device {name}: only cpu and cuda are supported")
    return device


def cmd_info(a) -> None:
    import torch

    import aid_ext
    from aid import __version__
    from aid.data.datasets import fashion_mnist_dir
    from aid.edm import DEFAULT_BACKBONE
    from aid.guidance.sample import DEFAULT_GUIDANCE
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
            ("bundled guidance", DEFAULT_GUIDANCE if os.path.exists(DEFAULT_GUIDANCE) else NO_BUNDLED_GUIDANCE),
            ("Fashion-MNIST", fmnist)]
    for k, v in rows:
        print(f"{k + ':':18} {v}")


def cmd_convert(a) -> None:
    from aid.core.nn import n_params
    from aid.edm import convert, load
    if not os.path.isfile(a.pkl):
        raise FileNotFoundError(f"PKL: no such file: {a.pkl} (download the official checkpoint yourself first)")
    convert(a.pkl, a.out)
    net = load(a.out)
    print(f"wrote {a.out}: EDMPrecond, {net.img_channels}×{net.img_resolution}×{net.img_resolution} images, "
          f"{n_params(net):,} parameters")


def cmd_demo(a) -> None:
    from aid.bench import run as speed_quality
    from aid.guidance.sample import DEFAULT_GUIDANCE
    methods, skipped = list(dict.fromkeys(a.methods)), {}
    if a.guidance and not os.path.isfile(a.guidance):
        raise FileNotFoundError(f"--guidance: no such file: {a.guidance}")
    guidance = a.guidance or (DEFAULT_GUIDANCE if os.path.exists(DEFAULT_GUIDANCE) else None)
    if "aid" in methods and guidance is None:
        methods.remove("aid")
        skipped["aid"] = f"{NO_BUNDLED_GUIDANCE} ({DEFAULT_GUIDANCE}); pass --guidance PATH from `aid train`"
    if not methods:
        raise ValueError("--methods: nothing to run")
    if a.num_images < 2 or min(a.nfe) < 1 or a.examples < 0 or (a.batch is not None and a.batch < 1):
        raise ValueError("need --num-images >= 2, every --nfe >= 1, --examples >= 0 and --batch >= 1")
    argv = ["--out", a.out, "--methods", *methods, "--masks", *a.masks, "--nfe", *map(str, a.nfe), "--images",
            str(a.num_images), "--batch", str(a.batch or a.num_images), "--no-default-nfe", "--examples",
            str(a.examples), "--example-nfe", str(sorted(a.nfe)[len(a.nfe) // 2]),  # the median target
            "--device", str(check_device(a.device)), "--resume"]
    speed_quality.main(argv + (["--aid", guidance] if "aid" in methods else []), skipped_methods=skipped,
                       prog="aid demo", parser_class=Parser)
    print(f"\nThe demo's results are in {a.out}: examples.png (the comparison grid), results.md and results.json "
          "(the metrics), quality_vs_nfe.png and quality_vs_seconds.png (speed against quality).")


def cmd_inpaint(a) -> None:
    from aid.inpaint import inpaint
    inpaint(a, check_device(a.device))


def passthrough(name: str, module: str, help: str):
    """A subcommand that hands its arguments to `module`.main(argv, prog, parser_class), which parses them with
    a Parser named `aid NAME`."""
    def run(argv):
        import importlib
        return importlib.import_module(module, __package__).main(argv, prog=f"aid {name}", parser_class=Parser)
    return run, help


PASSTHROUGH = {name: passthrough(name, module, text) for name, module, text in [
    ("train-backbone", "aid.edm.train", "train an EDM backbone on Fashion-MNIST 32×32 (as the bundled one; "
     "`aid train-backbone --help`)"),
    ("bench", "aid.bench.run", "the speed–quality benchmark, every method × NFE × mask (`aid bench --help`)")]}


def parser() -> Parser:
    from aid.guidance.train import parser as train_aid_parser
    p = Parser(prog="aid", description="AID: Amortized Inpainting with Diffusion on frozen EDM backbones.",
               epilog="`aid SUBCOMMAND --help` for the options of each.")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    d = sub.add_parser("demo", help="the main job: AID and the baselines on held-out Fashion-MNIST, with each mask "
                       "type, at a few NFE; writes the comparison grid, a metrics table and the speed–quality plot")
    d.add_argument("--out", default="aid-demo", help="results folder [aid-demo]; rerunning into it reuses its results")
    d.add_argument("--num-images", type=int, default=12, help="held-out test images per mask type [12]")
    d.add_argument("--masks", nargs="+", default=DEMO_MASKS, choices=KINDS, metavar="KIND",
                   help=f"mask types [{' '.join(DEMO_MASKS)}], from {', '.join(KINDS)}")
    d.add_argument("--methods", nargs="+", default=DEMO_METHODS, choices=method_names(), metavar="METHOD",
                   help=f"[{' '.join(DEMO_METHODS)}], from {', '.join(method_names())}")
    d.add_argument("--nfe", nargs="+", type=int, default=[5, 9, 19], help="target costs, NFE + VJP per image [5 9 19]")
    d.add_argument("--guidance", help="AID's guidance module [the bundled one]; without one AID is reported skipped")
    d.add_argument("--batch", type=int, help="images per sampler call [all of them]")
    d.add_argument("--examples", type=int, default=2, help="images per mask type in the comparison grid [2]")
    d.add_argument("--device", default="cpu", help="cpu or cuda [cpu]")
    d.set_defaults(run=cmd_demo)

    i = sub.add_parser("inpaint", help="inpaint your images: files, a folder or an EDM zip, with mask files or a "
                       "mask generator; writes PNGs of the same size")
    i.add_argument("images", nargs="+", help="image files, or one folder, or one EDM dataset zip")
    masks = i.add_mutually_exclusive_group(required=True)
    masks.add_argument("--mask", nargs="+", metavar="PNG", help="one mask for all images, or one per image "
                       "(white = known; see --hole-white)")
    masks.add_argument("--mask-kind", choices=KINDS, metavar="KIND", help=f"generated masks, from {', '.join(KINDS)}")
    i.add_argument("--mask-seed", type=int, default=0, help="seed of --mask-kind [0]")
    i.add_argument("--hole-white", action="store_true", help="mask files are white = hole (LaMa's convention)")
    i.add_argument("--out", required=True, help="output folder")
    i.add_argument("--method", default="aid", choices=method_names(), metavar="METHOD",
                   help=f"[aid], from {', '.join(method_names())}")
    i.add_argument("--backbone", help="official EDM .pkl or aid .safetensors [the bundled Fashion-MNIST backbone]")
    i.add_argument("--guidance", help="trained module of aid (actor.safetensors from `aid train`) or deft "
                   "(h.safetensors) [aid: the bundled one]")
    i.add_argument("--steps", type=int, help="sampling steps [aid: the K the guidance module was trained with "
                   "(trained over several: 9 if among them, else the largest); a baseline: its own default]")
    i.add_argument("--solver", choices=["euler", "heun"], help="aid and deft only [aid: the guidance module's "
                   "training solver; deft: euler]")
    i.add_argument("--guidance-scale", type=float, help="aid only: multiplies the guidance field; below 1 is "
                   "sharper and less faithful, 0 is unguided + paste [1]")
    i.add_argument("--seed", type=int, default=0, help="image i is drawn with seed + i [0]")
    i.add_argument("--batch", type=int, default=64, help="images per sampler call [64]")
    i.add_argument("--device", default="cpu", help="cpu or cuda [cpu]")
    i.add_argument("--grid", action="store_true", help="also write OUT/grid.png: masked input | output | input")
    i.set_defaults(run=cmd_inpaint)

    t = sub.add_parser("train", parents=[train_aid_parser()], add_help=False,
                       help="train AID's guidance module (`torchrun --nproc_per_node=N -m aid train ...` for "
                       "many GPUs; the flags of aid.guidance.train)")
    t.set_defaults(run=None)
    for name, (_, text) in PASSTHROUGH.items():
        sub.add_parser(name, help=text, add_help=False)
    c = sub.add_parser("convert", help="official EDM .pkl → aid .safetensors (read safely, never unpickled)")
    c.add_argument("pkl", help="an official NVlabs/edm snapshot, downloaded by you")
    c.add_argument("out", help="the .safetensors file to write")
    c.set_defaults(run=cmd_convert)
    sub.add_parser("info", help="versions, build (CUDA on/off, archs, torch it was built for), devices seen"
                   ).set_defaults(run=cmd_info)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv[:1]
    argv = argv[1:] if debug else argv
    command = argv[0] if argv else None
    try:
        if command in PASSTHROUGH:
            PASSTHROUGH[command][0](argv[1:])
        elif command == "train":
            from aid.guidance import train as train_aid
            parser().parse_args(argv)  # the usage errors, as `aid train: error: ...`
            train_aid.main(argv[1:])
        else:
            a = parser().parse_args(argv)
            a.run(a)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:
        if debug:
            raise
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"aid {command}: error: {message} (aid --debug {command} ... shows the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
