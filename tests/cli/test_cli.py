"""The installed `aid` command, driven as a new user would: in a subprocess, on the bundled backbone.
`aid demo` writes its folder with finite numbers; `aid inpaint` keeps a user PNG's size and known
pixels; every bad input a user can type exits non-zero with one readable line naming the problem."""
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from aid import cli
from aid.core.checkpoint import save_module, sha256_of
from aid.data.datasets import to_uint8
from aid.guidance.networks import GuidanceModule
from aid.guidance.sample import BUNDLED_GUIDANCE

AID = shutil.which("aid", path=os.path.dirname(sys.executable))
pytestmark = pytest.mark.skipif(AID is None, reason="the `aid` command is not installed (pip install -e .)")


def aid(*args, cwd=None):
    return subprocess.run([AID, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def fmnist():
    from aid.data.datasets import fashion_mnist
    try:
        return fashion_mnist("test", 32)[0]
    except FileNotFoundError as e:
        pytest.skip(f"Fashion-MNIST is not installed: {e}")


@pytest.fixture(scope="module")
def guidance(tmp_path_factory):
    """A zero-initialised guidance module (u ≡ 0): AID then equals the paste baseline."""
    u = GuidanceModule(1)
    path = str(tmp_path_factory.mktemp("guidance") / "actor.safetensors")
    save_module(u, path, "GuidanceModule", u.config)
    return path


@pytest.fixture(scope="module")
def user_files(fmnist, tmp_path_factory):
    """A user's 32×32 grayscale PNG and its mask PNG (white = known, a hole in the middle), plus bad ones."""
    d = tmp_path_factory.mktemp("user")
    Image.fromarray(to_uint8(fmnist[7, 0]).numpy()).save(d / "shirt.png")
    known = np.full((32, 32), 255, np.uint8)
    known[8:24, 10:22] = 0
    Image.fromarray(known).save(d / "mask.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(d / "all_hole.png")
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(d / "all_known.png")
    Image.fromarray(known[:16, :16]).save(d / "small_mask.png")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(d / "rgb.png")
    (d / "other_demo").mkdir()  # a results folder made with other settings
    (d / "other_demo" / "results.json").write_text(json.dumps({"setup": {"images": 1000, "modules": {}}}))
    return d


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny backbone, and guidance modules that aid.guidance.train trained on it for one iteration: with K = 3
    and Heun steps ("heun3"), and over K in {2, 4} with Euler steps ("euler2,4")."""
    from aid.edm import EDMPrecond
    from aid.guidance.actor_critic import ACConfig
    from aid.guidance.train import train_aid
    d = tmp_path_factory.mktemp("trained")
    torch.manual_seed(0)
    net = EDMPrecond(img_resolution=32, img_channels=1, model_channels=8, channel_mult=[1, 2], num_blocks=1,
                     attn_resolutions=[], dropout=0.0)
    save_module(net, str(d / "net.safetensors"), "EDMPrecond", net.init_kwargs)
    small = dict(actor_kwargs=dict(width=8, depth=1, emb=8), critic_kwargs=dict(width=8, emb=8), masks_per_kind=2,
                 mask_kinds=["center_box"], iters=1, batch=2, progress=False)
    data = torch.rand(4, 1, 32, 32) * 2 - 1
    train_aid(net, data, str(d / "heun3"), cfg=ACConfig(num_steps=3, solver="heun"), **small)
    train_aid(net, data, str(d / "euler2,4"), cfg=ACConfig(num_steps=2), num_steps_choices=[2, 4], **small)
    return str(d / "net.safetensors"), {k: str(d / k / "actor.safetensors") for k in ("heun3", "euler2,4")}


def test_demo_writes_its_folder_with_finite_numbers(fmnist, guidance, tmp_path):
    out = tmp_path / "demo"
    r = aid("demo", "--out", out, "--num-images", 2, "--masks", "center_box", "pixels70", "--nfe", 3,
            "--methods", "paste", "dps", "aid", "--guidance", guidance, "--examples", 1)
    assert r.returncode == 0, r.stderr
    for name in ["examples.png", "quality_vs_nfe.png", "quality_vs_seconds.png", "results.md", "results.json"]:
        assert os.path.getsize(out / name) > 0, name
    res = json.loads((out / "results.json").read_text())
    assert {(c["mask"], c["method"]) for c in res["cells"].values()} == \
        {(k, m) for k in ("center_box", "pixels70") for m in ("paste", "dps", "aid")}
    for c in res["cells"].values():
        numbers = [c[k] for k in ("hole_psnr", "psnr", "ssim", "hole_mse", "seconds_per_image")]
        assert all(math.isfinite(v) for v in numbers) and c["known_max_abs_err"] == 0.0, c
    assert "| aid | 3 | 3 |" in (out / "results.md").read_text()


def test_demo_without_a_guidance_module_reports_aid_skipped(fmnist, guidance, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(BUNDLED_GUIDANCE, "aid", str(tmp_path / "none.safetensors"))
    monkeypatch.setitem(BUNDLED_GUIDANCE, "aid_sharp", str(tmp_path / "none_sharp.safetensors"))
    demo = ["demo", "--num-images", "2", "--masks", "center_box", "--nfe", "2", "--examples", "0"]
    assert cli.main([*demo, "--out", str(tmp_path / "d"), "--methods", "paste", "aid", "aid_sharp"]) == 0
    res = json.loads((tmp_path / "d" / "results.json").read_text())
    assert {c["method"] for c in res["cells"].values()} == {"paste"}
    assert res["skipped"]["aid"].startswith("no bundled guidance module yet")
    assert "none_sharp.safetensors" in res["skipped"]["aid_sharp"] and "--guidance-sharp" in res["skipped"]["aid_sharp"]
    assert "**aid** skipped: no bundled guidance module yet" in (tmp_path / "d" / "results.md").read_text()
    # the sharp setting runs from its own flag, and the fidelity setting is still skipped
    assert cli.main([*demo, "--out", str(tmp_path / "s"), "--methods", "aid", "aid_sharp", "--guidance-sharp",
                     guidance]) == 0
    res = json.loads((tmp_path / "s" / "results.json").read_text())
    assert {c["method"] for c in res["cells"].values()} == {"aid_sharp"} and set(res["skipped"]) == {"aid"}
    assert res["setup"]["modules"] == {"aid_sharp": sha256_of(guidance)}


def test_inpaint_aid_sharp_runs_the_bundled_sharp_module(user_files, guidance, tmp_path, monkeypatch, capsys):
    from aid import methods
    inpaint = ["inpaint", str(user_files / "shirt.png"), "--mask", str(user_files / "mask.png"), "--out",
               str(tmp_path / "o"), "--method", "aid_sharp", "--steps", "3"]
    monkeypatch.setitem(BUNDLED_GUIDANCE, "aid_sharp", str(tmp_path / "none.safetensors"))
    assert cli.main(inpaint) == 1
    err = capsys.readouterr().err
    assert "--method aid_sharp: no bundled guidance module yet" in err and "none.safetensors" in err
    loaded, load_actor = [], methods.load_actor
    monkeypatch.setattr(methods, "load_actor", lambda path, *a: loaded.append(path) or load_actor(path, *a))
    monkeypatch.setitem(BUNDLED_GUIDANCE, "aid_sharp", guidance)
    assert cli.main(inpaint) == 0 and loaded == [guidance]
    assert os.path.getsize(tmp_path / "o" / "shirt.png") > 0


@pytest.mark.parametrize("method", ["aid", "ddnm"])
def test_inpaint_keeps_the_size_and_the_known_pixels(user_files, guidance, tmp_path, method):
    out = tmp_path / "out"
    r = aid("inpaint", user_files / "shirt.png", "--mask", user_files / "mask.png", "--out", out, "--method", method,
            "--steps", 3, "--grid", *(["--guidance", guidance] if method == "aid" else []))
    assert r.returncode == 0, r.stderr
    x = np.asarray(Image.open(user_files / "shirt.png"))
    y = np.asarray(Image.open(out / "shirt.png"))
    known = np.asarray(Image.open(user_files / "mask.png")) >= 128
    assert y.shape == x.shape and np.array_equal(y[known], x[known])
    assert not np.array_equal(y[~known], x[~known])  # the hole was filled, not copied from the input
    assert Image.open(out / "grid.png").size[0] > 3 * 32


def test_inpaint_aid_defaults_to_the_steps_and_solver_of_training(trained, tmp_path, monkeypatch):
    from aid import inpaint, methods
    from aid.guidance.actor_critic import ACConfig
    backbone, modules = trained
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)).save(tmp_path / "x.png")
    calls, sample_aid = [], methods.sample_aid  # aid.methods' aid sampler calls it (inpaint loads through methods)
    monkeypatch.setattr(methods, "sample_aid", lambda *args, **kw: calls.append(kw) or sample_aid(*args, **kw))

    def settings(module, *flags):
        calls.clear()
        assert cli.main(["inpaint", str(tmp_path / "x.png"), "--mask-kind", "center_box", "--out", str(tmp_path / "o"),
                         "--backbone", backbone, "--guidance", module, *flags]) == 0
        return calls[0]["num_steps"], calls[0]["solver"]

    assert settings(modules["heun3"]) == (3, "heun") and "guidance_scale" not in calls[0]  # sample_aid's: 1
    assert calls[0]["project"] is True
    assert settings(modules["heun3"], "--method", "aid_paste") == (3, "heun")  # a variant: AID's options
    assert calls[0]["project"] is False
    settings(modules["heun3"], "--guidance-scale", "0.5")
    assert calls[0]["guidance_scale"] == 0.5
    settings(modules["euler2,4"], "--method", "aid_sharp_ancestral")  # the sharp settings' own scale ...
    assert calls[0]["guidance_scale"] == methods.SHARP_SCALE and calls[0]["eta"] == 1.0
    settings(modules["heun3"], "--method", "aid_sharp", "--guidance-scale", "0.5")  # ... which the flag overrides
    assert calls[0]["guidance_scale"] == 0.5
    assert settings(modules["euler2,4"], "--method", "aid_sharp_mean2", "--steps", "3") == (3, "euler")  # per sample
    assert len(calls) == 2 and calls[1]["eta"] == 1.0 and calls[1]["guidance_scale"] == methods.SHARP_SCALE
    assert settings(modules["heun3"], "--steps", "5", "--solver", "euler") == (5, "euler")  # the flags win
    assert settings(modules["euler2,4"]) == (4, "euler")  # of several K: the largest, 9 not among them
    u = GuidanceModule(1)
    save_module(u, str(tmp_path / "k.safetensors"), "GuidanceModule", u.config,
                dict(ac_config=dict(num_steps=5, solver="heun"), num_steps_choices=[5, 9, 19]))
    assert inpaint.training_settings(str(tmp_path / "k.safetensors")) == (9, "heun")
    save_module(u, str(tmp_path / "none.safetensors"), "GuidanceModule", u.config)  # no training metadata
    assert inpaint.training_settings(str(tmp_path / "none.safetensors")) == (ACConfig.num_steps, ACConfig.solver)


def test_inpaint_a_folder_with_generated_masks_is_reproducible(user_files, fmnist, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(to_uint8(fmnist[i, 0]).numpy()).save(folder / f"{i}.png")
    outs = []
    for run in "ab":
        args = ["inpaint", folder, "--mask-kind", "half_bottom", "--method", "replacement", "--steps", 2, "--seed",
                5, "--batch", 2, "--out", tmp_path / run]
        assert cli.main(list(map(str, args))) == 0
        outs.append([np.asarray(Image.open(tmp_path / run / f"{i:05d}.png")) for i in range(3)])
    assert all(np.array_equal(a, b) for a, b in zip(*outs))


BAD_INPUTS = [  # (arguments after `aid`, with {d} the user-file folder; the message's key words)
    (["inpaint", "{d}/nosuch.png", "--mask", "{d}/mask.png", "--out", "{d}/o"], "no such file or folder"),
    (["inpaint", "{d}/shirt.png", "--mask", "{d}/nosuch.png", "--out", "{d}/o"], "--mask: no such file"),
    (["inpaint", "{d}/shirt.png", "--mask", "{d}/small_mask.png", "--out", "{d}/o"], "is 16×16, the images are 32×32"),
    (["inpaint", "{d}/shirt.png", "--mask", "{d}/all_hole.png", "--out", "{d}/o"], "is all hole"),
    (["inpaint", "{d}/shirt.png", "--mask", "{d}/all_known.png", "--out", "{d}/o"], "has no hole"),
    (["inpaint", "{d}/rgb.png", "--mask", "{d}/mask.png", "--out", "{d}/o"], "has 3 channel(s); the backbone makes 1"),
    (["inpaint", "{d}/shirt.png", "--mask", "{d}/mask.png", "--out", "{d}/o", "--method", "nosuch"],
     "argument --method: invalid choice: 'nosuch'"),
    (["inpaint", "{d}/shirt.png", "--mask", "{d}/mask.png", "--out", "{d}/o", "--method", "ddnm", "--steps", "0"],
     "--steps must be >= 1"),
    (["inpaint", "{d}/shirt.png", "--mask", "{d}/mask.png", "--out", "{d}/o", "--method", "ddnm", "--guidance-scale",
      "0.5"], "--guidance-scale: applies to aid only, not ddnm"),
    (["inpaint", "{d}/shirt.png", "--mask", "{d}/mask.png", "--out", "{d}/o", "--guidance-scale", "-1"],
     "--guidance-scale must be >= 0, got -1.0"),
    (["inpaint", "{d}/shirt.png", "--mask", "{d}/mask.png", "--out", "{d}/o", "--guidance", "{d}/none.safetensors"],
     "no such checkpoint"),
    (["convert", "{d}/nosuch.pkl", "{d}/out.safetensors"], "nosuch.pkl"),
    (["demo", "--out", "{d}/demo", "--guidance", "{d}/none.safetensors"], "aid demo: error: --guidance: no such file"),
    (["demo", "--out", "{d}/other_demo", "--methods", "paste", "--num-images", "2", "--masks", "center_box"],
     "aid demo: error: --resume: {d}/other_demo/results.json was made with other settings"),  # from aid.bench.run
    (["bench", "--out", "{d}/b", "--nfe", "0"], "aid bench: error: need --images >= 2"),
    (["bench", "--out", "{d}/b", "--methods", "nosuch"], "aid bench: error: argument --methods: invalid choice"),
    (["bench", "--out", "{d}/b", "--quick", "--methods", "paste", "aid", "--aid", "{d}/none.safetensors"],
     "aid bench: error: no such checkpoint: {d}/none.safetensors"),
    (["train-backbone", "--run-dir", "{d}/r", "--iters", "x"], "aid train-backbone: error: argument --iters: invalid"),
    (["train-backbone"], "aid train-backbone: error: the following arguments are required: --run-dir"),
    (["nosuch"], "invalid choice: 'nosuch'"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUTS, ids=[" ".join(a[:1] + [m[:24]]) for a, m in BAD_INPUTS])
def test_bad_input_exits_with_one_readable_line(user_files, argv, message):
    r = aid(*[a.format(d=user_files) for a in argv])
    assert r.returncode != 0 and message.format(d=user_files) in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


def test_debug_shows_the_traceback(user_files):
    r = aid("--debug", "inpaint", user_files / "shirt.png", "--mask", user_files / "all_hole.png", "--out",
            user_files / "o")
    assert r.returncode != 0 and "Traceback" in r.stderr and "is all hole" in r.stderr


def test_cuda_on_a_cpu_only_build_and_the_missing_guidance_module_say_what_to_do(user_files, tmp_path, monkeypatch,
                                                                                 capsys):
    import aid_ext
    inpaint = ["inpaint", str(user_files / "shirt.png"), "--mask", str(user_files / "mask.png"), "--out",
               str(tmp_path)]
    if not aid_ext.build_info()["with_cuda"]:
        assert cli.main(inpaint + ["--device", "cuda"]) == 1
        assert "--device cuda: this aid_ext build is CPU-only" in capsys.readouterr().err
    monkeypatch.setitem(BUNDLED_GUIDANCE, "aid", str(tmp_path / "none.safetensors"))
    assert cli.main(inpaint) == 1
    err = capsys.readouterr().err
    assert "no bundled guidance module yet" in err and "--guidance" in err and "aid train" in err


def test_train_accepts_exactly_train_aids_flags(capsys):
    from aid.guidance.train import parser
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    shown = capsys.readouterr().out
    flags = [o for action in parser()._actions for o in action.option_strings]
    assert shown.startswith("usage: aid train") and all(f in shown for f in flags)
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--run-dir", "x", "--iters", "1", "--no-such-flag"])
    assert e.value.code == 2 and "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_train_backbone_takes_the_flags_of_aid_edm_train_and_trains_alike(monkeypatch, capsys):
    """`aid train-backbone` repeats the command line of `python -m aid.edm.train`: the same flags, and the same
    call of aid.edm.train.train, by default and with every flag given."""
    import re

    from aid.edm import train as edm_train
    flags = []
    for run in (edm_train.main, lambda argv: cli.main(["train-backbone", *argv])):
        with pytest.raises(SystemExit):
            run(["--help"])
        flags.append(set(re.findall(r"--[a-z-]+", capsys.readouterr().out)))
    assert flags[0] == flags[1] and "--run-dir" in flags[0]
    calls = []
    monkeypatch.setattr(edm_train, "train", lambda data, *args, **kw: calls.append((data.shape, args, kw)))
    monkeypatch.setattr("aid.data.datasets.fashion_mnist", lambda split, res: (torch.zeros(2, 1, res, res), None))
    for given in ([], ["--iters", "7", "--batch", "3", "--lr", "0.1", "--seed", "2", "--max-seconds", "5",
                       "--init-from", "ema.safetensors"]):
        calls.clear()
        edm_train.main(["--run-dir", "r", *given])
        assert cli.main(["train-backbone", "--run-dir", "r", *given]) == 0
        assert len(calls) == 2 and calls[0] == calls[1], calls


def test_info_reports_the_build_and_the_device():
    import aid_ext
    r = aid("info")
    assert r.returncode == 0, r.stderr
    b = aid_ext.build_info()
    assert f"built for torch:   {b['torch_version']}" in r.stdout
    assert f"CUDA kernels:      {'on' if b['with_cuda'] else 'off'}" in r.stdout
    assert f"torch (running):   {torch.__version__}" in r.stdout and "device seen:" in r.stdout


def readme_commands() -> list[list[str]]:
    """The `aid ...` command lines of the README's bash blocks after the two install commands, of docs/cli.md
    (the command reference the README points to) and of docs/edm2-latent.md (the ImageNet-512 recipe; a torchrun
    line from its `-m aid` on), as argument lists without the leading `aid`."""
    import re
    import shlex
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    blocks = []
    for doc, skip in (("README.md", 2), (os.path.join("docs", "cli.md"), 0),
                      (os.path.join("docs", "edm2-latent.md"), 0)):
        with open(os.path.join(root, doc)) as f:
            blocks += re.findall(r"```bash\n(.*?)```", f.read(), re.S)[skip:]
    lines = [line.split("#")[0].strip() for b in blocks for line in b.splitlines()]
    lines = [line[line.index("-m aid ") + 3:] if line.startswith("torchrun") else line for line in lines]
    return [shlex.split(line)[1:] for line in lines if line.startswith("aid ")]


def test_readme_commands_are_valid_and_the_cheap_ones_run(capsys):
    """Every `aid` line of the README parses with the real parsers (so its subcommand and flags exist);
    `--help` lines and `aid info` run."""
    from aid.bench import run as speed_quality
    commands = readme_commands()
    assert {c[0] for c in commands} >= {"--help", "info", "demo", "inpaint", "train", "bench", "convert"}
    for argv in commands:
        if "--help" in argv:
            with pytest.raises(SystemExit) as e:
                cli.main(argv)
            assert e.value.code == 0 and "usage: " in capsys.readouterr().out
        elif argv == ["info"]:
            assert cli.main(argv) == 0 and "CUDA kernels:" in capsys.readouterr().out
        elif argv[0] == "bench":
            assert speed_quality.parse_args(argv[1:]).out
        else:
            assert cli.parser().parse_args(argv).command == argv[0]
