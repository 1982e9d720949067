"""aid.bench.run (benchmarks/speed_quality.py, `aid bench`):
the --quick smoke run on a tiny random backbone writes every output
with finite numbers and pasted known pixels, --resume skips finished cells, the NFE→steps rule,
the methods never see the hole, every method runs (DEFT and AID through their module options), and
bad arguments stop with a clear message."""
import json
import math
import os
import shutil
from functools import partial, update_wrapper

import pytest
import torch
from safetensors.torch import load_file, save_file

from aid.baselines.deft import KIND, HTransform
from aid.bench import provenance, results
from aid.bench import run as sq
from aid.core.checkpoint import save_module
from aid.data.masks import masks
from aid.guidance.networks import GuidanceModule
from aid.methods import SHARP_SCALE


@pytest.fixture(scope="module")
def quick(fmnist, backbone, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("quick"))
    sq.main(["--quick", "--backbone", backbone, "--out", out])
    with open(os.path.join(out, "results.json")) as f:
        return out, json.load(f)


def test_quick_writes_every_output_with_finite_numbers(quick):
    out, res = quick
    for name in ["results.json", "results.md", "quality_vs_nfe.png", "quality_vs_seconds.png", "examples.png"]:
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    cells = res["cells"].values()
    q = sq.QUICK
    assert {(c["mask"], c["method"]) for c in cells} == {(k, m) for k in q["masks"] for m in q["methods"]}
    for c in cells:
        numbers = [c[k] for k in ("hole_psnr", "psnr", "ssim", "hole_mse", "fd_fmnist", "kd_fmnist",
                                  "seconds_per_image")]
        assert all(isinstance(v, float) and math.isfinite(v) for v in numbers), c
        assert c["known_max_abs_err"] == 0.0 and c["non_finite_images"] == 0, c  # known pixels pasted exactly
        assert math.isfinite(c["seam"]) and c["seam"] > 0, c  # outputs' jump across the boundary / the truth's
        assert 0 < c["seam_se"] < c["seam"], c
        assert c["images"] == q["images"] and c["nfe"] + c["vjp"] == c["cost"]
        assert c["vjp"] == (c["num_steps"] if c["method"] == "pigdm" else 0)
    md = open(os.path.join(out, "results.md")).read()
    assert all(f"## {k}" in md for k in q["masks"]) and "| pigdm | 2 + 2 | 2 |" in md
    summary_5 = md.split("| method (cost ≈ 5) | center_box | pixels70 |")[1].split("\n\n")[0]
    assert summary_5.count("\n| ") == len(q["methods"])
    for kind in q["masks"]:  # the column's best hole PSNR and best (lowest) FD_fmnist are bold
        at_5 = [c for c in cells if c["mask"] == kind and 5 in c["targets"]]
        assert f"**{max(c['hole_psnr'] for c in at_5):.2f}**" in summary_5
        assert f"**{min(c['fd_fmnist'] for c in at_5):.3g}**" in summary_5
    run = res["runs"][0]
    assert run["machine"]["torch_threads"] >= 1 and run["versions"]["torch"] == torch.__version__


def test_resume_skips_finished_cells(quick, backbone, capsys):
    out, res = quick
    sq.main(["--quick", "--backbone", backbone, "--out", out, "--resume"])
    with open(os.path.join(out, "results.json")) as f:
        again = json.load(f)
    assert f"{len(res['cells'])} cells already in" in capsys.readouterr().out
    assert again["cells"] == res["cells"] and len(again["runs"]) == 2  # nothing rerun, the rerun recorded
    with pytest.raises(SystemExit, match="exists; pass --resume"):
        sq.main(["--quick", "--backbone", backbone, "--out", out])
    with pytest.raises(SystemExit, match="other settings: images \\(8 there, 9 now\\)"):
        sq.main(["--quick", "--backbone", backbone, "--out", out, "--resume", "--images", "9"])


def tiny(backbone: str, *more: str) -> list[str]:
    """Arguments of a seconds-long run: 4 images of the centre box, FD_fmnist from them too."""
    return ["--quick", "--backbone", backbone, "--images", "4", "--batch", "4", "--fd-min-images", "4", "--masks",
            "center_box", *more]


def test_merge_folds_in_the_cells_of_other_folders_made_the_same_way(fmnist, backbone, tmp_path):
    small = tiny(backbone, "--nfe", "2")
    a, b, both = (str(tmp_path / n) for n in ("a", "b", "both"))
    sq.main(small + ["--out", a, "--methods", "paste"])
    sq.main(small + ["--out", b, "--methods", "ddnm"])
    sq.main(small + ["--out", both, "--methods", "paste", "ddnm", "--merge", a, b])
    res = [json.load(open(os.path.join(f, "results.json"))) for f in (a, b, both)]
    assert res[2]["cells"]["center_box/paste/2"] == res[0]["cells"]["center_box/paste/2"]  # A is run 0 there too
    assert res[2]["cells"]["center_box/ddnm/2"] == dict(res[1]["cells"]["center_box/ddnm/2"], run=1)
    assert len(res[2]["runs"]) == 3 and len(res[2]["cells"]) == 2  # nothing was run again
    assert os.path.getsize(os.path.join(both, "examples.png")) > 0
    # merged back: A's run is listed once
    sq.main(small + ["--out", a, "--methods", "paste", "ddnm", "--resume", "--merge", both])
    back = json.load(open(os.path.join(a, "results.json")))
    assert back["runs"][:3] == res[2]["runs"] and len(back["runs"]) == 4 and back["cells"] == res[2]["cells"]
    with pytest.raises(SystemExit, match="--merge: .* other settings: images"):
        sq.main(small + ["--out", str(tmp_path / "c"), "--images", "5", "--merge", a])


def test_replace_takes_a_cell_measured_again_from_the_merged_folder(fmnist, backbone, tmp_path):
    """--merge keeps OUT's cell of a name both folders have; with --replace the merged folder's cell (measured
    again, e.g. for a field OUT's lacks) wins, with its examples, and both cells' targets."""
    small = tiny(backbone, "--methods", "dps")  # DPS costs 2 per step: targets 2 and 3 both give 1 step
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    sq.main(small + ["--out", a, "--nfe", "2"])
    sq.main(small + ["--out", b, "--nfe", "3"])
    path = os.path.join(a, "results.json")
    res = json.load(open(path))
    del res["cells"]["center_box/dps/1"]["seam_se"]  # as in a cell measured before the field existed
    json.dump(res, open(path, "w"))
    ex = load_file(os.path.join(a, "examples.safetensors"))
    save_file({k: torch.zeros_like(v) for k, v in ex.items()}, os.path.join(a, "examples.safetensors"))
    sq.main(small + ["--out", a, "--nfe", "2", "--resume", "--merge", b])
    assert "seam_se" not in json.load(open(path))["cells"]["center_box/dps/1"]  # kept: OUT's cell wins
    sq.main(small + ["--out", a, "--nfe", "2", "--resume", "--merge", b, "--replace"])
    cell, other = (json.load(open(os.path.join(f, "results.json")))["cells"]["center_box/dps/1"] for f in (a, b))
    assert cell["seam_se"] == other["seam_se"] and cell["targets"] == [2, 3] and other["targets"] == [3]
    ex_a, ex_b = (load_file(os.path.join(f, "examples.safetensors"))["center_box/dps/1"] for f in (a, b))
    assert torch.equal(ex_a, ex_b) and ex_a.abs().sum() > 0


def test_a_retrained_module_is_refused_until_its_methods_are_forgotten(fmnist, backbone, tmp_path):
    """A results folder records its modules' sha256: resuming or merging with another AID module is refused, naming
    --forget; --forget aid drops AID's cells and examples (the other methods' are kept), so that they are measured
    again with the new module, run here or merged from a folder that ran them."""
    u1, u2 = GuidanceModule(1), GuidanceModule(1)
    torch.nn.init.normal_(u2.conv_out.weight, std=0.1)  # another module, with other outputs
    for name, u in (("u1", u1), ("u2", u2)):
        save_module(u, str(tmp_path / f"{name}.safetensors"), "GuidanceModule", u.config)
    small = tiny(backbone, "--nfe", "2", "--methods", "aid", "ddnm")
    a, b, new = (str(tmp_path / n) for n in ("a", "b", "new"))
    sq.main(small + ["--out", a, "--aid", str(tmp_path / "u1.safetensors")])
    shutil.copytree(a, b)
    old = json.load(open(os.path.join(a, "results.json")))
    with pytest.raises(SystemExit, match="the aid module \\(another file\\); use another --out, or --forget"):
        sq.main(small + ["--out", a, "--resume", "--aid", str(tmp_path / "u2.safetensors")])
    sq.main(small + ["--out", a, "--resume", "--forget", "aid", "--aid", str(tmp_path / "u2.safetensors")])
    res = json.load(open(os.path.join(a, "results.json")))
    assert res["cells"]["center_box/ddnm/2"] == old["cells"]["center_box/ddnm/2"]  # kept, not run again
    assert res["cells"]["center_box/aid/2"]["hole_psnr"] != old["cells"]["center_box/aid/2"]["hole_psnr"]
    assert res["setup"]["modules"]["aid"] != old["setup"]["modules"]["aid"]
    ex_new, ex_old = (load_file(os.path.join(f, "examples.safetensors"))["center_box/aid/2"] for f in (a, b))
    assert not torch.equal(ex_new, ex_old)
    # the same by merging a folder that measured the new module alone
    sq.main(tiny(backbone, "--nfe", "2", "--methods", "aid", "--out", new, "--aid", str(tmp_path / "u2.safetensors")))
    sq.main(small + ["--out", b, "--resume", "--forget", "aid", "--merge", new, "--aid",
                     str(tmp_path / "u2.safetensors")])
    merged = json.load(open(os.path.join(b, "results.json")))
    assert merged["cells"]["center_box/aid/2"]["hole_psnr"] == res["cells"]["center_box/aid/2"]["hole_psnr"]
    assert merged["setup"]["modules"] == res["setup"]["modules"]


def test_merged_cells_without_examples_get_them_rerun_alone(fmnist, backbone, tmp_path):
    """A folder merged without examples.safetensors (e.g. one whose examples were not kept): the cells that
    examples.png shows get their first images rerun, equal to the full run's (image i always has seed i)."""
    small = tiny(backbone, "--nfe", "2", "--methods", "ddnm", "--examples", "2")
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    sq.main(small + ["--out", a])
    full = load_file(os.path.join(a, "examples.safetensors"))
    os.remove(os.path.join(a, "examples.safetensors"))
    sq.main(small + ["--out", b, "--merge", a])
    again = load_file(os.path.join(b, "examples.safetensors"))
    assert set(again) == set(full) == {"center_box/ddnm/2"}
    torch.testing.assert_close(again["center_box/ddnm/2"], full["center_box/ddnm/2"], rtol=0, atol=1e-5)
    assert len(json.load(open(os.path.join(b, "results.json")))["cells"]) == 1


def test_a_changed_default_is_refused_on_resume_and_merge(fmnist, backbone, tmp_path, monkeypatch):
    small = tiny(backbone, "--nfe", "2", "--methods", "ddnm")
    a = str(tmp_path / "a")
    sq.main(small + ["--out", a])
    monkeypatch.setitem(sq.METHODS, "ddnm", partial(sq.METHODS["ddnm"], eta=0.5))
    for more in (["--out", a, "--resume"], ["--out", str(tmp_path / "b"), "--merge", a]):
        with pytest.raises(SystemExit, match="ddnm/2 was measured with ddnm hyperparameters {'eta': 1.0}, other "
                                             "cells or the sampler now have {'eta': 0.5}; use a new --out"):
            sq.main(small + more)


def test_one_cell_serves_every_target_it_is_nearest_to(fmnist, backbone, tmp_path):
    small = tiny(backbone, "--methods", "dps")  # DPS costs 2 per step: targets 2 and 3 both give 1 step
    a, b, c = (str(tmp_path / n) for n in ("a", "b", "c"))
    sq.main(small + ["--out", a, "--nfe", "2"])
    sq.main(small + ["--out", a, "--nfe", "3", "--resume"])  # resumed with another target: nothing to run
    sq.main(small + ["--out", b, "--nfe", "3"])
    sq.main(small + ["--out", c, "--nfe", "2", "--merge", b])  # the merged cell also serves this call's target
    for folder, runs in ((a, 2), (c, 2)):
        res = json.load(open(os.path.join(folder, "results.json")))
        assert list(res["cells"]) == ["center_box/dps/1"] and len(res["runs"]) == runs
        assert res["cells"]["center_box/dps/1"]["targets"] == [2, 3]


def test_nfe_to_steps_rule():
    rp = sq.defaults(sq.METHODS["repaint"])
    assert [sq.steps_for("paste", t, {}) for t in (5, 9, 19, 35)] == [5, 9, 19, 35]
    assert [sq.steps_for("dps", t, {}) for t in (5, 9, 19, 35)] == [2, 4, 9, 17]  # cost 2N, ties to the cheaper
    assert [sq.steps_for("repaint", t, rp) for t in (5, 9, 19, 35, 100)] == [5, 9, 10, 10, 11]
    assert sq.cost("repaint", 50, rp) == 410
    # a variant: its method's rule at its own settings (DAPS-1K: 200 levels × 5 ODE steps)
    assert sq.cost("daps_public", 200, sq.defaults(sq.load_sampler("daps_public", None))) == 1000
    assert [sq.steps_for("ding_public", t, {}) for t in (5, 9)] == [3, 5] and sq.cost("aid_paste", 9, {}) == 9
    pts = sq.points("ddnm", sq.METHODS["ddnm"], [5, 9, 100], with_default=True)
    assert pts == [dict(num_steps=5, targets=[5], default=False), dict(num_steps=9, targets=[9], default=False),
                   dict(num_steps=100, targets=[100], default=True)]


def test_the_methods_never_see_the_hole_and_get_one_seed_per_image():
    seen = []

    def spy(net, y, mask, seeds, num_steps):
        seen.append((y, mask, list(seeds)))
        return y, {"nfe": num_steps, "vjp": 0}

    gt, mask = torch.rand(5, 1, 32, 32) * 2 - 1, masks("center_box", 5, 32)
    x, report, seconds = sq.run_cell(spy, torch.nn.Linear(1, 1), gt, mask, list(range(5)), 3, batch=2)
    assert all(((1 - m) * y).abs().max() == 0 for y, m, _ in seen)
    assert [s for _, _, s in seen] == [[0, 1], [2, 3], [4]]
    assert torch.equal(x, gt * mask) and report == {"nfe": 3, "vjp": 0} and seconds > 0


def test_a_variants_settings_are_recorded_also_when_they_pass_through_kwargs():
    def sampler(net, y, mask, seeds, num_steps, project=True, **kwargs):
        return y, {}
    assert results.hyperparameters(sampler) == {"project": True}
    variant = partial(sampler, project=False, guidance_scale=1.25)
    assert results.hyperparameters(variant) == {"project": False, "guidance_scale": 1.25}
    wrapped = update_wrapper(lambda *a, **kw: variant(*a, **kw), partial(variant, paste=False))
    assert results.hyperparameters(wrapped) == {"project": False, "guidance_scale": 1.25, "paste": False}


def test_a_diverged_output_is_counted_and_reported_as_nan_not_hidden():
    gt, mask = torch.rand(4, 1, 32, 32) * 2 - 1, masks("center_box", 4, 32)
    x = gt.clone()
    x[0, 0, 16, 16] = float("nan")  # in the hole of image 0
    m = sq.cell_metrics(x, gt, mask, fd_min=2)
    assert m["non_finite_images"] == 1 and m["known_max_abs_err"] == 0.0 and math.isnan(m["hole_psnr"])
    assert m["fd_fmnist"] == "skipped (1 non-finite images)"


@pytest.mark.parametrize("argv, message", [
    (["--methods", "nosuch"], "invalid choice: 'nosuch'"),
    (["--masks", "nosuch"], "invalid choice: 'nosuch'"),
    (["--methods", "deft"], "--methods deft needs --deft PATH"),
    (["--nfe", "0"], "every --nfe >= 1"),
    (["--forget", "aid"], "--forget drops cells of a results folder being resumed: pass --resume too"),
    (["--replace"], "--replace says which of two cells --merge keeps: pass --merge FOLDER too"),
])
def test_bad_arguments_exit_with_a_clear_message(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        sq.main(["--out", str(tmp_path)] + argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_missing_backbone_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setattr(sq, "DEFAULT_BACKBONE", str(tmp_path / "none.safetensors"))
    with pytest.raises(SystemExit, match="no such file.*python -m aid.edm.train.*or pass --backbone"):
        sq.main(["--quick", "--out", str(tmp_path)])


def test_a_missing_module_is_named_not_taken_for_a_missing_backbone(fmnist, tmp_path):
    missing = str(tmp_path / "none.safetensors")
    with pytest.raises(SystemExit) as e:  # on the bundled backbone, whose absence would add a hint
        sq.main(["--quick", "--out", str(tmp_path / "o"), "--methods", "paste", "aid", "--aid", missing],
                prog="aid bench")
    assert str(e.value.code).startswith(f"aid bench: error: no such checkpoint: {missing}")
    assert "aid.edm.train" not in str(e.value.code) and "\n" not in str(e.value.code)


def test_paths_inside_the_working_folder_are_recorded_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inside, outside = str(tmp_path / "m" / "net.safetensors"), "/elsewhere/net.safetensors"
    assert provenance.portable(dict(backbone=inside, aid=outside, images=3)) == dict(
        backbone=os.path.join("m", "net.safetensors"), aid=outside, images=3)


def test_versions_name_the_checkout_of_this_code_or_none(tmp_path, monkeypatch):
    import subprocess
    here = os.path.dirname(os.path.abspath(provenance.__file__))
    head = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    tracked = subprocess.run(["git", "-C", here, "ls-files", "--error-unmatch", provenance.__file__],
                             capture_output=True)
    if head and tracked.returncode == 0:  # running from a checkout (an editable install)
        v = provenance.versions()
        assert v["git_commit"] == head and isinstance(v["git_dirty"], bool)
    copy = tmp_path / "site-packages" / "aid" / "speed_quality.py"  # an installed copy, in no checkout
    copy.parent.mkdir(parents=True)
    copy.write_text("")
    monkeypatch.setattr(provenance, "__file__", str(copy))
    assert provenance.versions()["git_commit"] is None and provenance.versions()["git_dirty"] is None


def test_amortized_methods_without_a_module_are_skipped_with_the_reason(backbone, capsys):
    run, skipped = sq.samplers(["paste", "deft", "aid", "aid_paste", "aid_sharp"], sq.load(backbone), deft=None,
                               aid=None)
    assert list(run) == ["paste"] and set(skipped) == {"deft", "aid", "aid_paste", "aid_sharp"}
    assert "no --deft PATH given" in skipped["deft"] and "python -m aid.baselines.deft" in skipped["deft"]
    assert "no --aid PATH given" in skipped["aid"] and "no --aid PATH given" in skipped["aid_paste"]
    assert "no --aid-sharp PATH given" in skipped["aid_sharp"] and "--objective denoising" in skipped["aid_sharp"]
    for method, flag in (("aid_paste", "--aid"), ("aid_sharp", "--aid-sharp"), ("aid_sharp_ancestral", "--aid-sharp"),
                         ("aid_sharp_mean2", "--aid-sharp")):
        with pytest.raises(SystemExit):
            sq.main(["--backbone", backbone, "--out", "unused", "--methods", method])
        assert f"error: --methods {method} needs {flag} PATH" in capsys.readouterr().err


def test_every_method_runs_and_zero_amortized_modules_equal_their_baselines(fmnist, backbone, tmp_path):
    """Every method runs in the harness. With zero-initialized modules (h ≡ 0, u ≡ 0), DEFT is the unguided Euler
    sampler + paste, exactly the paste baseline, and AID (which projects the known pixels every step; its sharp
    setting too) exactly the replacement baseline (same seeds, same σ grid)."""
    h, u = HTransform(1), GuidanceModule(1)
    save_module(h, str(tmp_path / "h.safetensors"), KIND, h.config)
    save_module(u, str(tmp_path / "u.safetensors"), "GuidanceModule", u.config)
    out = tmp_path / "o"
    sq.main(["--backbone", backbone, "--out", str(out), "--nfe", "3", "--images", "2", "--masks", "center_box",
             "--no-default-nfe", "--examples", "1", "--deft", str(tmp_path / "h.safetensors"),
             "--aid", str(tmp_path / "u.safetensors"), "--aid-sharp", str(tmp_path / "u.safetensors")])
    res = json.load(open(out / "results.json"))
    cells = res["cells"]
    assert res["skipped"] == {} and {c["method"] for c in cells.values()} == set(sq.ALL_METHODS)
    assert all(c["fd_fmnist"] == "skipped (2 < 1000 images)" for c in cells.values())
    scaled = {"project": True, "guidance_scale": SHARP_SCALE}  # the sharp settings' field scale
    assert cells["center_box/aid_sharp_ancestral/3"]["hyperparameters"] == {**scaled, "eta": 1.0}
    assert cells["center_box/aid_sharp/3"]["hyperparameters"] == scaled
    assert cells["center_box/aid/3"]["hyperparameters"] == {"project": True}  # eta None: the module's own
    # the mean of 2 samples: target 3 is 1 step per sample (cost 2 and 4 tie; the smaller wins)
    mean2 = cells["center_box/aid_sharp_mean2/1"]
    assert mean2["hyperparameters"] == {**scaled, "eta": 1.0, "samples": 2} and mean2["nfe"] == 2
    anti2 = cells["center_box/aid_sharp_antithetic2/1"]
    assert anti2["hyperparameters"] == {**mean2["hyperparameters"], "antithetic": True} and anti2["nfe"] == 2
    same = dict(deft="paste", aid="replacement", aid_paste="paste", aid_sharp="replacement")
    for name, same_as in same.items():
        assert cells[f"center_box/{name}/3"]["hole_psnr"] == cells[f"center_box/{same_as}/3"]["hole_psnr"]
        assert cells[f"center_box/{name}/3"]["nfe"] == 3


def test_guidance_scale_sweep_zero_is_replacement_resumes_and_draws_the_reference(fmnist, backbone, quick,
                                                                                     tmp_path):
    """benchmarks/aid_guidance_scale.py: s = 0 is the replacement baseline's cell (AID projects the known pixels
    every step; same images, masks, seeds, metrics), s = 1 with a non-zero module differs from it; a rerun keeps
    its cells; the plot takes a speed_quality JSON."""
    from benchmarks import aid_guidance_scale as gs
    torch.manual_seed(0)
    u = GuidanceModule(1, width=8, depth=1, emb=8)
    torch.nn.init.normal_(u.conv_out.weight, std=0.1)
    save_module(u, str(tmp_path / "u.safetensors"), "GuidanceModule", u.config)
    q_out, _ = quick
    args = ["--out", str(tmp_path / "gs"), "--backbone", backbone, "--aid", str(tmp_path / "u.safetensors"),
            "--images", "8", "--batch", "8", "--nfe", "5", "--scales", "0", "1", "--masks", "center_box",
            "--reference", os.path.join(q_out, "results.json")]
    gs.main(args)
    cells = json.load(open(tmp_path / "gs" / "scale.json"))["cells"]
    ref = str(tmp_path / "replacement")
    sq.main(["--backbone", backbone, "--out", ref, "--methods", "replacement", "--nfe", "5", "--masks", "center_box",
             "--images", "8", "--batch", "8", "--fd-min-images", "8", "--no-default-nfe", "--examples", "1"])
    paste = json.load(open(os.path.join(ref, "results.json")))["cells"]["center_box/replacement/5"]
    assert cells["center_box/5/0/8"]["hole_psnr"] == paste["hole_psnr"]
    assert cells["center_box/5/0/8"]["fd_fmnist"] == pytest.approx(paste["fd_fmnist"], rel=1e-5)
    assert cells["center_box/5/1/8"]["hole_psnr"] != paste["hole_psnr"]
    points = gs.reference_points(os.path.join(q_out, "results.json"), {("center_box", 5)}, 8)
    assert len(points) == len(sq.QUICK["methods"])
    os.remove(tmp_path / "gs" / "scale.png")
    gs.main(args)  # resumed: nothing to run, the reports written again
    assert json.load(open(tmp_path / "gs" / "scale.json"))["cells"] == cells
    assert os.path.getsize(tmp_path / "gs" / "scale.png") > 0
    gs.main(args[:-7] + ["--scales", "0", "--masks", "pixels70"])  # another mask kind, then this one again:
    gs.main(args)  # the reports cover every cell of OUT, not only this call's
    assert "| pixels70 | 5 | 0 |" in open(tmp_path / "gs" / "scale.md").read()
    with pytest.raises(SystemExit):
        gs.main(args[:-2] + ["--scales", "-1"])
