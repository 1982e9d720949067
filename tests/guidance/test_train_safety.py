"""Issue 20 for aid.guidance.train: a diverging run never replaces its last good snapshot and says how to go on;
a run folder records fingerprints of its backbone, data and masks and refuses to resume on others (naming
which), while a folder from before fingerprints still resumes; log.jsonl has no repeated iterations after a
resume; bad numbers are refused up front, naming the argument."""
import json
import math
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file

from aid.eval.oracle import GaussianDenoiser, random_covariance
from aid.guidance import train as train_module
from aid.guidance.actor_critic import ACConfig
from aid.guidance.train import train_aid

SHAPE = (1, 8, 8)
SMALL = dict(actor_kwargs=dict(width=8, depth=1, emb=8), critic_kwargs=dict(width=8, emb=8), masks_per_kind=4,
             progress=False, mask_kinds=["center_box"], batch=2)


def _problem(cov_seed=0):
    cov = random_covariance(64, cov_seed)
    net = GaussianDenoiser(torch.zeros(64, dtype=torch.float64), cov, SHAPE)
    z = torch.randn(16, 64, generator=torch.Generator().manual_seed(0))
    return net, (z @ torch.linalg.cholesky(random_covariance(64, 0)).float().T).reshape(16, *SHAPE)


def _state(run_dir):
    return torch.load(os.path.join(run_dir, "state.pt"), weights_only=True)


def _log_iters(run_dir):
    return [json.loads(line)["iter"] for line in open(os.path.join(run_dir, "log.jsonl"))]


def _finite_tree(t) -> bool:
    if isinstance(t, dict):
        return all(_finite_tree(v) for v in t.values())
    if isinstance(t, (list, tuple)):
        return all(_finite_tree(v) for v in t)
    if isinstance(t, torch.Tensor) and t.is_floating_point():
        return bool(torch.isfinite(t).all())
    if isinstance(t, float):
        return math.isfinite(t)
    return True


# --- case 2: divergence -------------------------------------------------------------------------------------------

def test_a_diverging_run_keeps_its_last_good_snapshot_and_resumes_with_lower_rates(tmp_path):
    net, data = _problem()
    run = str(tmp_path / "run")
    calm = ACConfig(num_steps=2, critic_warmup=1, lr_actor=1e-3, lr_critic=1e-3)
    train_aid(net, data, run, cfg=calm, iters=2, snapshot_every=1, log_every=1, **SMALL)
    good = open(os.path.join(run, "actor.safetensors"), "rb").read()
    wild = ACConfig(num_steps=2, critic_warmup=1, lr_actor=1e8, lr_critic=1e8)  # the issue's rates
    with pytest.raises(FloatingPointError) as info:
        train_aid(net, data, run, cfg=wild, iters=30, snapshot_every=1, log_every=1, **SMALL)
    message = str(info.value)
    assert "diverged at iteration" in message and "--lr-actor" in message and "--lr-critic" in message, message
    last = _state(run)["iter"]
    assert 2 <= last < 30 and f"(iteration {last})" in message, message
    if last == 2:
        assert open(os.path.join(run, "actor.safetensors"), "rb").read() == good
    assert _finite_tree(_state(run)) and _finite_tree(load_file(os.path.join(run, "actor.safetensors")))
    assert all(math.isfinite(v) for line in open(os.path.join(run, "log.jsonl"))
               for v in json.loads(line).values() if isinstance(v, float))
    train_aid(net, data, run, cfg=calm, iters=last + 2, snapshot_every=1, log_every=1, **SMALL)
    s = _state(run)
    assert s["iter"] == last + 2 and s["setup"]["cfg"]["lr_actor"] == 1e-3 and _finite_tree(s)
    assert s["trainer"]["opt_actor"]["param_groups"][0]["lr"] == 1e-3  # the new rate is the one used
    assert _log_iters(run) == list(range(1, last + 3))
    with pytest.raises(ValueError, match=r"another setup \(cfg.lam"):  # other changes are still refused
        train_aid(net, data, run, cfg=ACConfig(num_steps=2, critic_warmup=1, lam=0.5), iters=last + 3, **SMALL)


def test_the_issues_run_stops_at_once_and_writes_no_nan_actor(tmp_path):
    """Case 2 as filed: the rates 1e8 from the start. The critic diverges in the first iteration: an error, and
    no actor.safetensors or state.pt (before issue 20: a NaN actor, exit 0)."""
    net, data = _problem()
    wild = ACConfig(num_steps=2, critic_warmup=1, lr_actor=1e8, lr_critic=1e8)
    with pytest.raises(FloatingPointError, match=r"diverged at iteration 1 .*last good snapshot \(iteration 0\)"):
        train_aid(net, data, str(tmp_path), cfg=wild, iters=8, snapshot_every=1, **SMALL)
    assert not os.path.exists(tmp_path / "actor.safetensors") and not os.path.exists(tmp_path / "state.pt")


@pytest.mark.parametrize("field, value", [("beta", float("nan")), ("beta", 0.0), ("lr_actor", float("inf")),
                                          ("sigma_max", float("inf")), ("critic_updates", 0),
                                          ("denoise_gamma", 1.5)])
def test_config_numbers_out_of_range_are_refused_by_name(tmp_path, field, value):
    net, data = _problem()
    with pytest.raises(ValueError, match=rf"ACConfig.{field} \(--{field.replace('_', '-')}\) must be"):
        train_aid(net, data, str(tmp_path), cfg=ACConfig(num_steps=2, **{field: value}), iters=1, **SMALL)
    assert not os.path.exists(tmp_path / "state.pt")


@pytest.mark.parametrize("arg", ["masks_per_kind", "snapshot_every", "log_every"])
def test_counts_below_one_are_refused_by_name(tmp_path, arg):
    net, data = _problem()
    with pytest.raises(ValueError, match=rf"{arg} must be >= 1, got 0"):
        train_aid(net, data, str(tmp_path), cfg=ACConfig(num_steps=2), iters=1, **{**SMALL, arg: 0})


# --- case 3: fingerprints ---------------------------------------------------------------------------------------

def test_resuming_on_other_data_another_backbone_or_other_masks_is_refused_by_name(tmp_path, monkeypatch):
    net, data = _problem()
    run = dict(cfg=ACConfig(num_steps=2), iters=1, **SMALL)
    train_aid(net, data, str(tmp_path), **run)
    fp = _state(tmp_path)["fingerprints"]
    assert set(fp) == {"backbone", "data", "masks"}
    more = {**run, "iters": 2}
    with pytest.raises(ValueError, match="another data set"):
        train_aid(net, data.flip(0), str(tmp_path), **more)
    other, _ = _problem(cov_seed=1)  # the same class and size: the setup alone cannot tell
    with pytest.raises(ValueError, match="another backbone"):
        train_aid(other, data, str(tmp_path), **more)
    real_pool = train_module.mask_pool
    monkeypatch.setattr(train_module, "mask_pool", lambda *a: 1 - real_pool(*a))
    with pytest.raises(ValueError, match="other masks"):
        train_aid(net, data, str(tmp_path), **more)
    monkeypatch.undo()
    train_aid(net, data, str(tmp_path), **more)  # the same three: resumes
    assert _state(tmp_path)["iter"] == 2 and _state(tmp_path)["fingerprints"] == fp


def test_a_run_from_before_fingerprints_resumes_and_records_them(tmp_path, capsys):
    """A state.pt written before issue 20 has no fingerprints (and the same setup keys): it resumes, with a
    one-line note, and its next snapshot records them."""
    net, data = _problem()
    run = dict(cfg=ACConfig(num_steps=2), **SMALL)
    train_aid(net, data, str(tmp_path), iters=1, **run)
    s = _state(tmp_path)
    del s["fingerprints"]  # as the trainer wrote it before
    torch.save(s, tmp_path / "state.pt")
    train_aid(net, data, str(tmp_path), iters=2, **run)
    err = capsys.readouterr().err
    assert "predates fingerprints" in err and len([line for line in err.splitlines() if "fingerprint" in line]) == 1
    s = _state(tmp_path)
    assert s["iter"] == 2 and set(s["fingerprints"]) == {"backbone", "data", "masks"}
    with pytest.raises(ValueError, match="another data set"):  # checked from then on
        train_aid(net, data.flip(0), str(tmp_path), iters=3, **run)


def test_a_run_from_before_a_new_config_field_resumes_at_its_default_only(tmp_path):
    """A state.pt written before an ACConfig field existed (here denoise_gamma) ran at its default: it resumes
    with the default, and a run asking for another value is refused by the field's name."""
    net, data = _problem()
    run = dict(objective="denoising", **SMALL)
    train_aid(net, data, str(tmp_path), cfg=ACConfig(num_steps=2), iters=1, **run)
    s = _state(tmp_path)
    del s["setup"]["cfg"]["denoise_gamma"]  # as the trainer wrote it before the field
    torch.save(s, tmp_path / "state.pt")
    with pytest.raises(ValueError, match=r"another setup \(cfg.denoise_gamma: 0.0 there, 0.5 here"):
        train_aid(net, data, str(tmp_path), cfg=ACConfig(num_steps=2, denoise_gamma=0.5), iters=2, **run)
    train_aid(net, data, str(tmp_path), cfg=ACConfig(num_steps=2), iters=2, **run)
    assert _state(tmp_path)["iter"] == 2


# --- case 9: the log after a resume ------------------------------------------------------------------------------

def test_the_log_has_each_iteration_once_after_a_kill_and_a_resume(tmp_path):
    net, data = _problem()
    run = dict(cfg=ACConfig(num_steps=2), log_every=1, **SMALL)
    train_aid(net, data, str(tmp_path), iters=2, **run)
    shutil.copyfile(tmp_path / "state.pt", tmp_path / "state_at_2.pt")
    train_aid(net, data, str(tmp_path), iters=4, **run)
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write('{"iter": 5, "cost": 1.')  # a line cut short by the kill
    shutil.copyfile(tmp_path / "state_at_2.pt", tmp_path / "state.pt")  # killed after iteration 4, before its snapshot
    train_aid(net, data, str(tmp_path), iters=6, **run)
    assert _log_iters(tmp_path) == [1, 2, 3, 4, 5, 6]
