"""benchmarks/tune_baselines.py's selection options on a tiny random backbone: a method at its default only
(a reference row) and an AID module at several guidance scales."""
import math

import pytest
import torch

from aid.baselines.deft import KIND, HTransform
from aid.core.checkpoint import save_module
from aid.edm import load
from aid.guidance.networks import GuidanceModule
from benchmarks.tune_baselines import main, markdown, tune


def actor_file(tmp_path, seed: int) -> str:
    """A small projecting guidance module with a non-zero field (so that its scale and sampler matter), saved."""
    torch.manual_seed(seed)
    actor = GuidanceModule(1, width=8, depth=1, project=True)
    torch.nn.init.normal_(actor.conv_out.weight, std=0.5)
    path = str(tmp_path / "actor.safetensors")
    save_module(actor, path, "GuidanceModule", actor.config, {"ac_config": {"num_steps": 5, "solver": "euler"}})
    return path


def test_only_default_and_aid_scales(backbone, tmp_path):
    net = load(backbone)
    path = actor_file(tmp_path, seed=1)
    h = HTransform(1)  # zero-initialized: DEFT is then exactly the paste baseline
    save_module(h, str(tmp_path / "h.safetensors"), KIND, h.config)
    gt = torch.rand(6, 1, 32, 32) * 2 - 1
    res = tune(net, gt, ["ddnm", "repaint", "paste", "deft"], [5], aid_paths=[path], aid_scales=[1.0, 0.0, 2.0],
               only_default=True, fd=True, deft=str(tmp_path / "h.safetensors"))

    assert list(res["ddnm"]["values"]) == ["1.0"]  # DDNM's default η only
    assert list(res["repaint"]["values"]) == ["default"]  # a method without a tuning grid, at its defaults
    assert res["deft"]["values"]["default"] == res["paste"]["values"]["default"]  # DEFT with its h read from deft
    values = res["aid"]["values"]
    assert list(values) == [path, f"{path} [s=0.0]", f"{path} [s=2.0]"]  # s = 1 is the module itself, once
    scores = {v: s["mean"] for v, s in values.items()}
    assert len(set(scores.values())) == 3, scores  # each scale deploys a different field
    assert all(len(s) == 4 + 4 for s in values.values())  # four mask kinds at one cost, mean, fd, seam, seam_se
    fds = [f for rec in res.values() for s in rec["values"].values() for f in s["fd"].values()]
    assert len(fds) == 4 * 7 and all(math.isfinite(f) and f >= 0 for f in fds)
    seams = [r for rec in res.values() for s in rec["values"].values() for r in s["seam"].values()]
    assert len(seams) == 4 * 7 and all(math.isfinite(r) and r > 0 for r in seams)
    ses = [e for rec in res.values() for s in rec["values"].values() for e in s["seam_se"].values()]
    assert len(ses) == 4 * 7 and all(math.isfinite(e) and e > 0 for e in ses)  # 6 images: an error to report
    table = markdown(res, [5])
    assert "FD_fmnist" in table and "Seam" in table and table.count("| aid |") == 3 * 3  # each table: every AID value
    assert f"{seams[0]:.3f} ± {ses[0]:.3f}" in table


def test_aid_scales_on_ancestral_steps(backbone, tmp_path):
    net = load(backbone)
    path = actor_file(tmp_path, seed=2)
    gt = torch.rand(4, 1, 32, 32) * 2 - 1
    values = tune(net, gt, [], [5], aid_paths=[path], aid_scales=[2.0], aid_ancestral=True)["aid"]["values"]
    assert list(values) == [path, f"{path} [ancestral]", f"{path} [s=2.0]", f"{path} [ancestral, s=2.0]"]
    scores = {v: s["mean"] for v, s in values.items()}
    assert len(set(scores.values())) == 4, scores  # each sampler and scale deploys something different


def test_untuned_method_needs_only_default(capsys):
    with pytest.raises(SystemExit):
        main(["--out", "unused", "--methods", "repaint"])
    assert "--only-default" in capsys.readouterr().err
