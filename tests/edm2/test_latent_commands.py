"""`aid train`, `aid inpaint` and `aid bench` in EDM2's latent space (--vae), end to end on tiny random EDM2 nets
and a tiny random SD-layout VAE (conftest.py): the same resumable run folder as pixel training (a stopped run
resumes bit-identically, another VAE or other labels are refused), AID, DEFT and the baselines with the known
pixels exact in the output PNGs, conditional and unconditional nets, autoguidance counted in NFE, and the
flags' errors."""
import json
import os
import re

import numpy as np
import pytest
import torch
from fakes import assert_trees_equal, run_state
from PIL import Image

from aid import cli
from aid.baselines.deft import KIND as DEFT_KIND
from aid.baselines.deft import HTransform
from aid.core.checkpoint import read_metadata, save_module

pytest.importorskip("diffusers", reason="the latent pipeline needs diffusers (pip install 'aid-ext[latent]')")

SMALL = ["--mask-kinds", "center_box,pixels50", "--masks-per-kind", "2", "--batch", "2", "--critic-warmup", "0",
         "--lr-actor", "1e-2", "--actor", '{"width": 8, "depth": 1, "emb": 8}', "--critic",
         '{"width": 8, "emb": 8}', "--device", "cpu"]


def edm2_flags(files, conditional=True):
    """The backbone flags: the conditional net autoguided (g = 2) with the data's labels, or the plain uncond net."""
    if conditional:
        return ["--vae", files["vae"], "--backbone", files["cond"], "--guide", files["guide"], "--guidance-weight",
                "2", "--class-labels", "data"]
    return ["--vae", files["vae"], "--backbone", files["uncond"]]


def train(files, run_dir, iters, *more):
    return cli.main(["train", "--run-dir", str(run_dir), "--iters", str(iters), "--data", files["images"],
                     "--steps", "2,3", *edm2_flags(files), *SMALL, *more])


@pytest.fixture(scope="module")
def trained(latent_files, tmp_path_factory):
    """A latent run of 3 iterations in one go, and one stopped after 2 and resumed to 3."""
    d = tmp_path_factory.mktemp("runs")
    assert train(latent_files, d / "whole", 3) == 0
    assert train(latent_files, d / "stopped", 2) == 0
    assert train(latent_files, d / "stopped", 3) == 0
    return d


def test_a_stopped_latent_run_resumes_bit_identically(trained):
    whole, resumed = run_state(trained / "whole"), run_state(trained / "stopped")
    assert whole["iter"] == 3 and whole["trainer"]["actor"]["conv_out.weight"].abs().max() > 0  # it trained
    assert_trees_equal(whole, {**resumed, "seconds": whole["seconds"]})
    log = [json.loads(line) for line in open(trained / "stopped" / "log.jsonl")]
    assert [r["iter"] for r in log] == [2, 3] and all(np.isfinite(r["cost"]) for r in log)  # at each stop
    kind, config, extra = read_metadata(str(trained / "stopped" / "actor.safetensors"))
    assert kind == "GuidanceModule" and config["img_channels"] == 4  # an actor on the 4 latent channels
    assert extra["problem"] == {"space": "latent", "encoding": "mean", "vae_factor": 8, "guidance_weight": 2.0,
                                "class_labels": "per image"}
    assert set(extra["fingerprints"]) == {"backbone", "data", "masks", "vae", "labels"}


def test_resuming_on_other_labels_or_another_guidance_weight_is_refused(trained, latent_files, capsys):
    assert train(latent_files, trained / "stopped", 4, "--class-labels", "5") == 1  # the last --class-labels wins
    assert "other class labels" in capsys.readouterr().err
    flags = edm2_flags(latent_files)
    flags[flags.index("--guidance-weight") + 1] = "3"
    assert cli.main(["train", "--run-dir", str(trained / "stopped"), "--iters", "4", "--data", latent_files["images"],
                     "--steps", "2,3", *flags, *SMALL]) == 1
    assert "another setup (problem.guidance_weight: 2.0 there, 3.0 here)" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--guide", "G.pkl"], "--guide applies in EDM2's latent space only: pass --vae"),
    (["--vae", "V", "--guidance-weight", "2"], "--guidance-weight 2 needs --guide"),
    (["--vae", "V", "--data", "D"], "--vae needs --backbone, an EDM2 latent net"),
])
def test_train_flags_are_checked_before_anything_loads(tmp_path, capsys, argv, message):
    assert cli.main(["train", "--run-dir", str(tmp_path / "r"), "--iters", "1", *argv]) == 1
    assert message in capsys.readouterr().err


def test_train_names_the_missing_labels_and_a_pixel_backbone(latent_files, tmp_path, capsys):
    base = ["train", "--run-dir", str(tmp_path / "r"), "--iters", "1", "--data", latent_files["images"],
            "--vae", latent_files["vae"]]
    assert cli.main([*base, "--backbone", latent_files["cond"]]) == 1
    assert "class-conditional (10 classes): pass --class-labels data" in capsys.readouterr().err
    assert cli.main([*base, "--backbone", latent_files["uncond"], "--class-labels", "3"]) == 1
    assert "--backbone is unconditional" in capsys.readouterr().err
    assert cli.main([*base, "--backbone", latent_files["vae"] + "/config.json"]) == 1
    assert "--backbone:" in capsys.readouterr().err and not (tmp_path / "r" / "state.pt").exists()


def _read_png(path):
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def h_transform(tmp_path_factory):
    """A DEFT h-transform for the 4 latent channels, its output layer random (h ≠ 0)."""
    torch.manual_seed(3)
    h = HTransform(4, width=8, emb=8)
    torch.nn.init.normal_(h.conv_out.weight, std=0.1)
    path = str(tmp_path_factory.mktemp("deft") / "h.safetensors")
    save_module(h, path, DEFT_KIND, h.config)
    return path


@pytest.mark.parametrize("method", ["aid", "deft", "ddnm", "pigdm"])
def test_inpaint_in_latent_space_keeps_the_known_pixels_exact(trained, latent_files, h_transform, tmp_path, method,
                                                             capsys):
    module = {"aid": str(trained / "whole" / "actor.safetensors"), "deft": h_transform}.get(method)
    out = tmp_path / "out"
    argv = ["inpaint", latent_files["images"], "--mask-kind", "center_box", "--out", str(out), "--method", method,
            "--steps", "2", "--batch", "3", *edm2_flags(latent_files), *(["--guidance", module] if module else [])]
    assert cli.main(argv) == 0, capsys.readouterr().err
    from aid.data.masks import masks
    known = masks("center_box", 4, 64, 0)[:, 0].bool().numpy()
    for i in range(4):
        x, y = _read_png(out / f"{i:05d}.png"), _read_png(os.path.join(latent_files["images"], f"{i}.png"))
        assert x.shape == y.shape == (64, 64, 3)
        assert np.array_equal(x[known[i]], y[known[i]]) and not np.array_equal(x, y)
    again = tmp_path / "again"
    assert cli.main([a if a != str(out) else str(again) for a in argv]) == 0
    assert all((out / n).read_bytes() == (again / n).read_bytes() for n in os.listdir(out))  # seeded


def test_inpaint_an_unconditional_net_from_image_files(latent_files, tmp_path, capsys):
    files = [os.path.join(latent_files["images"], f"{i}.png") for i in (0, 1)]
    assert cli.main(["inpaint", *files, "--mask-kind", "half_right", "--out", str(tmp_path / "o"), "--method",
                     "replacement", "--steps", "2", *edm2_flags(latent_files, conditional=False)]) == 0
    assert sorted(os.listdir(tmp_path / "o")) == ["0.png", "1.png"]
    flags = edm2_flags(latent_files)  # image files carry no labels: one class for all, or none is an error
    assert cli.main(["inpaint", *files, "--mask-kind", "half_right", "--out", str(tmp_path / "c"), *flags]) == 1
    assert "--class-labels data: IMAGES has no labels" in capsys.readouterr().err
    for label in ("7", "2"):
        flags[-1] = label
        assert cli.main(["inpaint", *files, "--mask-kind", "half_right", "--out", str(tmp_path / label), "--method",
                         "replacement", "--steps", "2", *flags]) == 0
    assert (tmp_path / "7" / "0.png").read_bytes() != (tmp_path / "2" / "0.png").read_bytes()  # the label is used


def test_train_an_unconditional_net_without_a_guide(latent_files, tmp_path):
    assert cli.main(["train", "--run-dir", str(tmp_path / "u"), "--iters", "1", "--data", latent_files["images"],
                     "--steps", "2", *edm2_flags(latent_files, conditional=False), *SMALL]) == 0
    _, _, extra = read_metadata(str(tmp_path / "u" / "actor.safetensors"))
    assert extra["problem"]["class_labels"] is None and extra["problem"]["guidance_weight"] == 1.0
    assert "labels" not in extra["fingerprints"] and extra["iterations"] == 1


def test_inpaint_refuses_pixel_modules_edm2_flags_without_vae_means_on_latents(trained, latent_files, tmp_path, capsys):
    from aid.guidance.networks import GuidanceModule
    pixel = GuidanceModule(3, width=8, depth=1, emb=8)
    save_module(pixel, str(tmp_path / "pixel.safetensors"), "GuidanceModule", pixel.config)
    assert cli.main(["inpaint", latent_files["images"], "--mask-kind", "center_box", "--out", str(tmp_path / "o"),
                     "--guidance", str(tmp_path / "pixel.safetensors"), "--steps", "2",
                     *edm2_flags(latent_files)]) == 1
    assert re.search(r"built for 3-channel images", capsys.readouterr().err)
    assert cli.main(["inpaint", latent_files["images"], "--mask-kind", "center_box", "--out", str(tmp_path / "p"),
                     "--class-labels", "3"]) == 1
    assert "--class-labels applies in EDM2's latent space only" in capsys.readouterr().err
    assert cli.main(["inpaint", latent_files["images"], "--mask-kind", "center_box", "--out", str(tmp_path / "q"),
                     "--method", "aid_sharp_mean2", *edm2_flags(latent_files)]) == 1
    assert "--method aid_sharp_mean2 averages pixel images; with --vae" in capsys.readouterr().err


def test_bench_quick_in_latent_space(trained, latent_files, h_transform, tmp_path, capsys):
    """Every cell measured on the decoded pixels, the known pixels exact, autoguidance's two evaluations per step
    in each cost (target 4 NFE: 2 Euler steps, 1 DPS step), FD_fmnist left out, the mean of samples skipped; a
    rerun with --resume has nothing left to do, one on other test images is refused."""
    out = tmp_path / "sq"
    argv = ["bench", "--quick", "--out", str(out), "--images", "2", "--batch", "2", "--nfe", "4", "--masks",
            "center_box", "--methods", "paste", "repaint", "dps", "deft", "aid", "aid_sharp_mean2", "--deft",
            h_transform, "--aid", str(trained / "whole" / "actor.safetensors"), "--aid-sharp",
            str(trained / "whole" / "actor.safetensors"), "--examples", "1", "--device", "cpu",
            "--data", latent_files["images"], *edm2_flags(latent_files)]
    assert cli.main(argv) == 0, capsys.readouterr().err
    res = json.loads((out / "results.json").read_text())
    cells = res["cells"]
    assert {c["method"] for c in cells.values()} == {"paste", "repaint", "dps", "deft", "aid"}
    assert list(res["skipped"]) == ["aid_sharp_mean2"] and "latent space" in res["skipped"]["aid_sharp_mean2"]
    for c in cells.values():
        assert c["known_max_abs_err"] == 0 and c["non_finite_images"] == 0 and np.isfinite(c["hole_psnr"])
        assert c["cost"] == c["nfe"] + c["vjp"] == 4 and c["targets"] == [4]
        assert c["num_steps"] == (1 if c["method"] == "dps" else 2) and c["fd_fmnist"].startswith("skipped")
    assert res["setup"]["evals_per_call"] == 2 and res["setup"]["latent"]["class_labels"] == "data"
    assert {"results.md", "examples.png", "quality_vs_nfe.png"} <= set(os.listdir(out))
    assert cli.main([*argv, "--resume"]) == 0 and "0 to run" in capsys.readouterr().out
    other = [a if a != "2" else "3" for a in argv]  # 3 images: other test images
    assert cli.main([*other, "--resume"]) == 1 and "other settings" in capsys.readouterr().err
