"""Issue 20 for the `aid` command, as a hostile but realistic user drives it: non-finite results are errors
naming their likely cause with nothing written; output paths are checked before any compute; `aid convert`
never destroys its input; every bad value names its flag or file; Ctrl-C is one line. Most cases run cli.main
in this process; the two that are about what a user sees on the terminal run the installed command."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import aid_ext
from aid import cli
from aid.core.checkpoint import save_module
from aid.edm import EDMPrecond
from aid.guidance.networks import GuidanceModule

AID = shutil.which("aid", path=os.path.dirname(sys.executable))
CPU_ONLY = not aid_ext.build_info()["with_cuda"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A user's 32×32 grey image (also as 16-bit, and named grid.png), a centre-hole mask (white = known), a
    truncated mask, and broken models: a backbone and a guidance module with a NaN weight."""
    d = tmp_path_factory.mktemp("user")
    img = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(img).save(d / "img0.png")
    Image.fromarray(img).save(d / "grid.png")
    Image.fromarray(img.astype(np.uint16) * 257).save(d / "img16.png")
    known = np.full((32, 32), 255, np.uint8)
    known[8:24, 8:24] = 0
    Image.fromarray(known).save(d / "mask.png")
    data = (d / "mask.png").read_bytes()
    (d / "trunc.png").write_bytes(data[:len(data) // 2])
    torch.manual_seed(0)
    net = EDMPrecond(img_resolution=32, img_channels=1, model_channels=8, channel_mult=[1], num_blocks=1,
                     attn_resolutions=[], dropout=0.0)
    with torch.no_grad():
        next(net.parameters()).view(-1)[0] = float("nan")
    save_module(net, str(d / "nan_backbone.safetensors"), "EDMPrecond", net.init_kwargs)
    u = GuidanceModule(1)
    with torch.no_grad():
        u.conv_out.weight.fill_(float("nan"))
    save_module(u, str(d / "nan_actor.safetensors"), "GuidanceModule", u.config)
    (d / "a_file").write_text("not a folder")
    (d / "src.pkl").write_bytes(b"stands for an official EDM snapshot")
    return d


def run(capsys, *argv):
    """cli.main in this process: (exit status, stderr)."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    return code, capsys.readouterr().err


def one_line(err: str) -> bool:
    """The message is one line, the last one (a progress bar may stand above it, never below), no traceback."""
    lines = [line for line in re.split(r"[\r\n]", err) if line.strip()]
    said = [line for line in lines if re.match(r"aid [\w-]+: ", line)]
    return len(said) == 1 and lines[-1] == said[0] and "Traceback" not in err


def pngs(folder) -> list[str]:
    return sorted(p for p in os.listdir(folder) if p.endswith(".png")) if os.path.isdir(folder) else []


# --- case 1: non-finite results -----------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", ["inf", "nan"])
def test_a_non_finite_guidance_scale_is_refused(files, tmp_path, capsys, scale):
    code, err = run(capsys, "inpaint", files / "img0.png", "--mask", files / "mask.png", "--out", tmp_path / "o",
                    "--guidance-scale", scale, "--steps", 5)
    assert code == 1 and f"--guidance-scale must be finite, got {scale}" in err and one_line(err), err
    assert pngs(tmp_path / "o") == []


def test_a_huge_guidance_scale_is_an_error_naming_it_and_nothing_is_written(files, tmp_path, capsys):
    code, err = run(capsys, "inpaint", files / "img0.png", "--mask", files / "mask.png", "--out", tmp_path / "o",
                    "--guidance-scale", "1e30", "--steps", 5)
    assert code == 1 and "not finite" in err and "--guidance-scale 1e+30" in err and one_line(err), err
    assert "nothing was written" in err and pngs(tmp_path / "o") == []


def test_a_nan_guidance_module_is_named(files, tmp_path, capsys):
    code, err = run(capsys, "inpaint", files / "img0.png", "--mask", files / "mask.png", "--out", tmp_path / "o",
                    "--guidance", files / "nan_actor.safetensors", "--steps", 3)
    assert code == 1 and "nan_actor.safetensors" in err and "NaN or inf" in err and one_line(err), err
    assert pngs(tmp_path / "o") == []


def test_a_nan_backbone_is_named(files, tmp_path, capsys):
    code, err = run(capsys, "inpaint", files / "img0.png", "--mask", files / "mask.png", "--out", tmp_path / "o",
                    "--method", "ddnm", "--backbone", files / "nan_backbone.safetensors", "--steps", 3)
    assert code == 1 and "nan_backbone.safetensors" in err and "NaN or inf" in err and one_line(err), err
    assert pngs(tmp_path / "o") == []


def test_a_sampler_returning_nan_names_the_causes(files, tmp_path, capsys, monkeypatch):
    """Whatever makes a result non-finite (a backbone that returns NaN on some input, say), nothing is written."""
    from aid import inpaint
    real = inpaint.sampler
    monkeypatch.setattr(inpaint, "sampler", lambda *a, **k: (lambda fn: lambda y, m, s: (fn(y, m, s)[0] * np.nan,
                                                                                          {}))(real(*a, **k)))
    code, err = run(capsys, "inpaint", files / "img0.png", "--mask", files / "mask.png", "--out", tmp_path / "o",
                    "--method", "paste", "--steps", 2)
    assert code == 1 and "the paste result is not finite (NaN or inf) for img0.png" in err, err
    assert "the backbone" in err and pngs(tmp_path / "o") == []


# --- case 4: output paths before compute, atomic PNGs -----------------------------------------------------------------

@pytest.fixture
def no_compute(monkeypatch):
    """Fails the test if a backbone is loaded: the check under test must come first."""
    def load(*args, **kwargs):
        raise AssertionError("a backbone was loaded before the output path was checked")
    monkeypatch.setattr("aid.inpaint.load", load)


@pytest.mark.parametrize("out, message", [("a_file", "--out: {d}/a_file is a file, not a folder"),
                                          ("a_file/sub", "--out: cannot create {d}/a_file/sub: {d}/a_file is a file")])
def test_out_is_checked_before_any_compute(files, capsys, no_compute, out, message):
    code, err = run(capsys, "inpaint", files / "img0.png", "--mask", files / "mask.png", "--out", files / out)
    assert code == 1 and message.format(d=files) in err and one_line(err), err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_is_checked_before_any_compute(files, tmp_path, capsys, no_compute):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    code, err = run(capsys, "inpaint", files / "img0.png", "--mask", files / "mask.png", "--out", ro / "o")
    assert code == 1 and "is not writable" in err, err


def test_an_input_named_grid_png_is_not_overwritten_by_the_grid(files, tmp_path, capsys, no_compute):
    code, err = run(capsys, "inpaint", files / "grid.png", "--mask", files / "mask.png", "--out", tmp_path, "--grid")
    assert code == 1 and "--grid: an input is named grid.png" in err and one_line(err), err


@pytest.mark.parametrize("argv", [["bench", "--quick", "--out", "{d}/a_file"], ["demo", "--out", "{d}/a_file"],
                                  ["train", "--run-dir", "{d}/a_file", "--iters", "1"]])
def test_other_output_folders_are_checked_first(files, capsys, argv):
    code, err = run(capsys, *[a.format(d=files) for a in argv])
    assert code != 0 and f"{files}/a_file is a file, not a folder" in err and one_line(err), err


# --- case 5: 16-bit input -------------------------------------------------------------------------------------------

def test_a_16_bit_image_keeps_its_known_pixels(files, tmp_path, capsys):
    code, err = run(capsys, "inpaint", files / "img16.png", "--mask", files / "mask.png", "--out", tmp_path,
                    "--method", "replacement", "--steps", 2)
    assert code == 0, err
    out = np.asarray(Image.open(tmp_path / "img16.png"))
    want = np.asarray(Image.open(files / "img0.png"))  # the 8-bit image the 16-bit one was made from
    known = np.asarray(Image.open(files / "mask.png")) >= 128
    assert np.array_equal(out[known], want[known])


# --- case 6: convert ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("out, message", [("{d}/src.pkl", "is the input file"), ("{d}/./src.pkl", "is the input file"),
                                          ("{d}/out.pkl", "must end in .safetensors")])
def test_convert_never_overwrites_its_input_and_checks_the_suffix(files, capsys, out, message):
    before = (files / "src.pkl").read_bytes()
    code, err = run(capsys, "convert", files / "src.pkl", out.format(d=files))
    assert code == 1 and f"OUT: {out.format(d=files)}" in err and message in err and one_line(err), err
    assert (files / "src.pkl").read_bytes() == before and not (files / "out.pkl").exists()


# --- case 8: errors that name their argument ------------------------------------------------------------------------

@pytest.mark.parametrize("flags, message", [
    (["--steps", "abc"], "argument --steps: expected step counts >= 1"),
    (["--steps", "5,0"], "argument --steps: step counts must be >= 1"),
    (["--actor", "{bad"], "argument --actor: not valid JSON"),
    (["--critic", "[1]"], "argument --critic: expected a JSON object"),
    (["--masks-per-kind", "0"], "argument --masks-per-kind: must be >= 1, got 0"),
    (["--snapshot-every", "0"], "argument --snapshot-every: must be >= 1, got 0"),
    (["--batch", "x"], "argument --batch: invalid integer >= 1 value: 'x'"),
    (["--iters", "-1"], "argument --iters: must be >= 0, got -1"),
    (["--beta", "nan"], "argument --beta: must be a finite number, got 'nan'"),
    (["--lr-actor", "inf"], "argument --lr-actor: must be a finite number, got 'inf'"),
    (["--critic-updates", "0"], "ACConfig.critic_updates (--critic-updates) must be >= 1"),
])
def test_train_flags_are_checked_by_name_before_anything_runs(tmp_path, capsys, flags, message):
    code, err = run(capsys, "train", "--run-dir", tmp_path / "r", "--iters", 1, *flags)
    assert code in (1, 2) and message in err and one_line(err), err
    assert not (tmp_path / "r").exists()


def test_a_truncated_mask_is_named(files, tmp_path, capsys):
    code, err = run(capsys, "inpaint", files / "img0.png", "--mask", files / "trunc.png", "--out", tmp_path)
    assert code == 1 and f"--mask: cannot read mask image {files}/trunc.png" in err and one_line(err), err


@pytest.mark.skipif(not CPU_ONLY, reason="the build has CUDA kernels")
@pytest.mark.parametrize("argv", [["train", "--run-dir", "{t}/r", "--iters", "1"],
                                  ["bench", "--quick", "--out", "{t}/b"]])
def test_cuda_on_a_cpu_only_build_is_named_for_train_and_bench(tmp_path, capsys, argv):
    code, err = run(capsys, *[a.format(t=tmp_path) for a in argv], "--device", "cuda")
    assert code == 1 and "--device cuda: this aid_ext build is CPU-only" in err and one_line(err), err


# --- case 10: many steps, Ctrl-C -------------------------------------------------------------------------------------

def test_many_steps_warn_and_the_bar_counts_network_evaluations(files, tmp_path, capsys, monkeypatch):
    from aid import inpaint

    def fake_sampler(net, method, **kwargs):  # stands for 100000 steps: three backbone calls
        def sample(y, m, seeds):
            for _ in range(3):
                net(y, torch.ones(len(y)))
            return y, {}
        return sample
    monkeypatch.setattr(inpaint, "sampler", fake_sampler)
    monkeypatch.setattr(inpaint.time, "monotonic", iter(range(0, 1000, 10)).__next__)  # every call 10 s later
    code, err = run(capsys, "inpaint", files / "img0.png", "--mask", files / "mask.png", "--out", tmp_path,
                    "--steps", 100000, "--method", "paste")
    assert code == 0, err
    assert "aid inpaint: warning: --steps 100000 is far more than any method needs" in err
    assert "3 network evaluations" in err


@pytest.mark.parametrize("command, argv", [("inpaint", ["{d}/img0.png", "--mask", "{d}/mask.png", "--out", "{t}"]),
                                           ("train", ["--run-dir", "{t}/r", "--iters", "1"])])
def test_ctrl_c_is_one_line(files, tmp_path, capsys, monkeypatch, command, argv):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("aid.inpaint.inpaint" if command == "inpaint" else "aid.guidance.train.train_aid", interrupted)
    code, err = run(capsys, command, *[a.format(d=files, t=tmp_path) for a in argv])
    assert code == 130 and err.startswith(f"aid {command}: interrupted") and one_line(err), err
    if command == "train":
        assert "run the same command again to resume" in err


# --- case 2 on the terminal: the error line is the last line ------------------------------------------------------

@pytest.mark.skipif(AID is None, reason="the `aid` command is not installed (pip install -e .)")
def test_the_issues_diverging_train_command_fails_with_its_message_last(tmp_path):
    torch.manual_seed(0)
    net = EDMPrecond(img_resolution=16, img_channels=1, model_channels=8, channel_mult=[1], num_blocks=1,
                     attn_resolutions=[], dropout=0.0)
    save_module(net, str(tmp_path / "net.safetensors"), "EDMPrecond", net.init_kwargs)
    (tmp_path / "data").mkdir()
    for i in range(4):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (16, 16), dtype=np.uint8)).save(
            tmp_path / "data" / f"{i}.png")
    r = subprocess.run([AID, "train", "--run-dir", str(tmp_path / "r"), "--iters", "8", "--batch", "2", "--steps", "5",
                        "--data", str(tmp_path / "data"), "--masks-per-kind", "4", "--critic-warmup", "1",
                        "--lr-actor", "1e8", "--lr-critic", "1e8", "--backbone", str(tmp_path / "net.safetensors"),
                        "--actor", json.dumps({"width": 8, "depth": 1}), "--critic", json.dumps({"width": 8}),
                        "--device", "cpu"], capture_output=True, text=True, timeout=300)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 1, r.stderr
    assert last.startswith("aid train: error: train_aid: training diverged at iteration"), r.stderr
    assert "--lr-actor" in last and "Traceback" not in r.stderr
    assert not (tmp_path / "r" / "actor.safetensors").exists()  # nothing of a NaN run was written
