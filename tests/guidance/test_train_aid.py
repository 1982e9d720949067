"""AID's training infrastructure (aid.guidance.train) and deployment (aid.guidance.sample.sample_aid) on the
linear-Gaussian oracle: exact resume, refusal of a changed setup, randomized K, 2 gloo processes
against 1 process, the CLI on (fake) Fashion-MNIST, and the sampler's contract."""
import json
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from fakes import assert_trees_equal, run_state
from torch.multiprocessing.spawn import ProcessExitedException

import aid.guidance.actor_critic
import aid.guidance.networks
from aid.baselines import paste as paste_baseline
from aid.core.checkpoint import read_metadata, save_module, sha256_of
from aid.data.masks import TEST_SET_VERSION, masks
from aid.edm import EDMPrecond, edm_sigmas, sample
from aid.eval.oracle import GaussianDenoiser, random_covariance
from aid.guidance.actor_critic import ACConfig, AIDTrainer, rollout
from aid.guidance.networks import GuidanceModule
from aid.guidance.sample import load_actor, sample_aid
from aid.guidance.train import TRAIN_MASK_SEED, main, train_aid

SHAPE = (1, 8, 8)
SMALL = dict(actor_kwargs=dict(width=8, depth=1, emb=8), critic_kwargs=dict(width=8, emb=8), masks_per_kind=4,
             progress=False)


def _problem():
    """The oracle backbone (d = 64) and 32 clean images drawn from it."""
    cov = random_covariance(64, 0)
    net = GaussianDenoiser(torch.zeros(64, dtype=torch.float64), cov, SHAPE)
    z = torch.randn(32, 64, generator=torch.Generator().manual_seed(0))
    return net, (z @ torch.linalg.cholesky(cov).float().T).reshape(32, *SHAPE)


def test_a_killed_run_resumes_bitwise_with_randomized_steps(tmp_path):
    net, data = _problem()
    cfg = ACConfig(lr_actor=1e-2, lr_critic=1e-2, critic_warmup=2)
    run = dict(cfg=cfg, mask_kinds=["center_box", "pixels50"], batch=4, seed=3, num_steps_choices=[2, 3],
               log_every=1, **SMALL)
    whole = train_aid(net, data, str(tmp_path / "a"), iters=6, **run)
    train_aid(net, data, str(tmp_path / "b"), iters=3, **run)  # "killed" after 3 iterations
    resumed = train_aid(net, data, str(tmp_path / "b"), iters=6, **run)
    assert all(torch.equal(p, q) for p, q in zip(whole.state_dict().values(), resumed.state_dict().values()))
    a, b = run_state(tmp_path / "a"), run_state(tmp_path / "b")
    assert_trees_equal(a, {**b, "seconds": a["seconds"]})
    assert a["iter"] == a["trainer"]["iteration"] == 6
    log = [json.loads(line) for line in open(tmp_path / "b" / "log.jsonl")]
    assert [r["iter"] for r in log] == list(range(1, 7)) and {r["last_K"] for r in log} == {2, 3}
    assert [r["actor_loss"] == 0 for r in log] == [True, True, False, False, False, False]  # critic warm-up
    kind, config, extra = read_metadata(str(tmp_path / "b" / "actor.safetensors"))
    assert kind == "GuidanceModule" and config == whole.config and extra["iterations"] == 6
    assert extra["ac_config"]["lr_actor"] == 1e-2 and extra["num_steps_choices"] == [2, 3]
    assert extra["param_ratio"] is None  # the oracle has no parameters
    shipped = load_actor(str(tmp_path / "b" / "actor.safetensors"))
    assert all(torch.equal(p, q) for p, q in zip(whole.parameters(), shipped.parameters()))


def test_the_ema_ships_resumes_bitwise_and_can_be_added_on_resume(tmp_path, capsys):
    """ema_halflife: actor.safetensors holds the EMA, state.pt the raw actor and the EMA; a killed run resumes to
    the same bits; a run started without one takes one on resume, starting from the actor's weights there."""
    net, data = _problem()
    cfg = ACConfig(lr_actor=1e-2, lr_critic=1e-2, critic_warmup=1)
    run = dict(cfg=cfg, mask_kinds=["center_box"], batch=4, seed=1, **SMALL)
    whole = train_aid(net, data, str(tmp_path / "a"), iters=5, ema_halflife=2, **run)
    train_aid(net, data, str(tmp_path / "b"), iters=2, ema_halflife=2, **run)
    resumed = train_aid(net, data, str(tmp_path / "b"), iters=5, ema_halflife=2, **run)
    a, b = run_state(tmp_path / "a"), run_state(tmp_path / "b")
    assert_trees_equal(a, {**b, "seconds": a["seconds"]})
    shipped = load_actor(str(tmp_path / "a" / "actor.safetensors"))
    assert_trees_equal(dict(shipped.state_dict()), a["ema"])
    assert_trees_equal(dict(whole.state_dict()), a["ema"])
    assert_trees_equal(dict(resumed.state_dict()), a["ema"])
    assert any(not torch.equal(v, a["trainer"]["actor"][k]) for k, v in a["ema"].items())  # an average, not the last
    assert read_metadata(str(tmp_path / "b" / "actor.safetensors"))[2]["ema_halflife"] == 2
    # added on resume: the first EMA step starts from the resumed actor (β = 0.5 at half-life 1)
    train_aid(net, data, str(tmp_path / "c"), iters=2, **run)
    raw_before = run_state(tmp_path / "c")["trainer"]["actor"]
    train_aid(net, data, str(tmp_path / "c"), iters=3, ema_halflife=1, **run)
    assert "ema_halflife 1 (was None)" in capsys.readouterr().err
    c = run_state(tmp_path / "c")
    for k, v in c["ema"].items():
        torch.testing.assert_close(v, (raw_before[k] + c["trainer"]["actor"][k]) / 2)


def test_the_ema_rampup_caps_the_half_life_early_and_may_be_set_on_resume(tmp_path, capsys):
    """ema_rampup r: the EMA's half-life at iteration i is min(h, r·i) (ActorEMA.update), recorded in the shipped
    file; set on resume, it is accepted with a note; without a half-life it is refused."""
    net, data = _problem()
    cfg = ACConfig(lr_actor=1e-2, lr_critic=1e-2, critic_warmup=0)
    run = dict(cfg=cfg, mask_kinds=["center_box"], batch=4, seed=1, **SMALL)
    train_aid(net, data, str(tmp_path / "a"), iters=2, ema_halflife=100, **run)
    before = run_state(tmp_path / "a")
    train_aid(net, data, str(tmp_path / "a"), iters=3, ema_halflife=100, ema_rampup=0.5, **run)
    assert "ema_rampup 0.5 (was None)" in capsys.readouterr().err
    after = run_state(tmp_path / "a")
    w = 1 - 0.5 ** (1 / 1.5)  # iteration 3: half-life min(100, 0.5·3) = 1.5
    for k, v in after["ema"].items():
        torch.testing.assert_close(v, before["ema"][k] + w * (after["trainer"]["actor"][k] - before["ema"][k]))
    assert read_metadata(str(tmp_path / "a" / "actor.safetensors"))[2]["ema_rampup"] == 0.5
    with pytest.raises(ValueError, match="set ema_halflife"):
        train_aid(net, data, str(tmp_path / "b"), iters=1, ema_rampup=0.5, **run)
    assert not (tmp_path / "b").exists()  # refused before anything is written


def test_resuming_with_another_setup_is_refused(tmp_path):
    net, data = _problem()
    run = dict(mask_kinds=["center_box"], batch=2, iters=1, **SMALL)
    train_aid(net, data, str(tmp_path), cfg=ACConfig(num_steps=2), **run)
    with pytest.raises(ValueError, match=r"another setup \(cfg.lam: 0.1 there, 0.5 here\)"):
        train_aid(net, data, str(tmp_path), cfg=ACConfig(num_steps=2, lam=0.5), **run)


def test_a_run_forks_with_more_steps_per_rollout_and_one_from_before_actor_updates_resumes(tmp_path, capsys):
    """critic_updates and actor_updates may change on resume (a fork: the folder copied, more reuse of each
    rollout), with a note; a state.pt written before ACConfig.actor_updates existed resumes at its default."""
    net, data = _problem()
    run = dict(mask_kinds=["center_box"], batch=2, **SMALL)
    train_aid(net, data, str(tmp_path), cfg=ACConfig(num_steps=2, critic_warmup=0), iters=1, **run)
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    del state["setup"]["cfg"]["actor_updates"]
    torch.save(state, tmp_path / "state.pt")
    train_aid(net, data, str(tmp_path), cfg=ACConfig(num_steps=2, critic_warmup=0), iters=2, **run)
    assert "actor_updates" not in capsys.readouterr().err  # it ran at the default, 1: nothing changed
    train_aid(net, data, str(tmp_path), cfg=ACConfig(num_steps=2, critic_warmup=0, actor_updates=3), iters=3, **run)
    assert "actor_updates 3 (was 1)" in capsys.readouterr().err
    assert {int(s["step"]) for s in run_state(tmp_path)["trainer"]["opt_actor"]["state"].values()} == {1 + 1 + 3}


def test_max_seconds_stops_with_a_snapshot_and_the_run_goes_on(tmp_path):
    net, data = _problem()
    run = dict(cfg=ACConfig(num_steps=2), mask_kinds=["center_box"], batch=2, iters=2, **SMALL)
    train_aid(net, data, str(tmp_path), max_seconds=0, **run)
    assert run_state(tmp_path)["iter"] == 0 and read_metadata(str(tmp_path / "actor.safetensors"))[2]["iterations"] == 0
    train_aid(net, data, str(tmp_path), **run)
    assert run_state(tmp_path)["iter"] == 2 and len(open(tmp_path / "log.jsonl").readlines()) == 1


def test_keep_snapshots_keeps_each_snapshots_actor(tmp_path):
    net, data = _problem()
    train_aid(net, data, str(tmp_path), cfg=ACConfig(num_steps=2), mask_kinds=["center_box"], batch=2, iters=4,
              snapshot_every=2, keep_snapshots=True, **SMALL)
    kept = sorted(p.name for p in tmp_path.glob("actor_*.safetensors"))
    assert kept == ["actor_000002.safetensors", "actor_000004.safetensors"]
    assert read_metadata(str(tmp_path / kept[0]))[2]["iterations"] == 2
    assert (tmp_path / kept[1]).read_bytes() == (tmp_path / "actor.safetensors").read_bytes()


def test_bad_arguments_and_mask_seeds(tmp_path):
    net, data = _problem()
    run = dict(cfg=ACConfig(num_steps=2), iters=1, **SMALL)
    with pytest.raises(ValueError, match="mask_kinds must be a non-empty list"):
        train_aid(net, data, str(tmp_path), mask_kinds=["box"], batch=2, **run)
    with pytest.raises(ValueError, match=r"data must be \[N, 1, 8, 8\]"):
        train_aid(net, data[:, :, :4], str(tmp_path), mask_kinds=["center_box"], batch=2, **run)
    with pytest.raises(ValueError, match="step counts >= 1"):
        train_aid(net, data, str(tmp_path), mask_kinds=["center_box"], batch=2, num_steps_choices=[0, 2], **run)
    # training pools use the mask seeds (TRAIN_MASK_SEED + seed)·1_000_003 + i, i < 1_000_003;
    # the benchmark's are (10_000 + version)·1_000_003 + i
    benchmark = 10_000 + TEST_SET_VERSION
    assert TRAIN_MASK_SEED > benchmark
    assert not torch.equal(masks("random_box", 8, 32, TRAIN_MASK_SEED), masks("random_box", 8, 32, benchmark))


class _NoiseByGlobalRow:
    """Stands in for `torch` inside aid.guidance.actor_critic. AIDTrainer.rollout draws a shard's noise in one
    call from one generator, so a shard cannot reproduce its rows of a whole-batch draw; here every
    call draws the whole batch's noise from a generator all ranks seed alike and keeps this rank's
    rows, so the rollout noise of a global row is the same for any number of processes."""

    def __init__(self, rank: int, world: int):
        self.rank, self.world, self.gen = rank, world, torch.Generator().manual_seed(7)

    def __getattr__(self, name):
        return getattr(torch, name)

    def randn(self, shape, generator=None, device=None):
        b = shape[0]
        return torch.randn((b * self.world, *shape[1:]), generator=self.gen)[self.rank * b:(self.rank + 1) * b]


DDP_RUN = dict(cfg=ACConfig(lr_actor=1e-2, lr_critic=1e-2, critic_warmup=0), mask_kinds=["random_box", "pixels50"],
               batch=4, iters=3, num_steps_choices=[2, 3], log_every=1, **SMALL)


def _ddp_worker(rank: int, world: int, store: str, run_dir: str):
    torch.set_num_threads(1)
    # a file rendezvous: no port to race for, and no TCP store thread to outlive the group
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        aid.guidance.actor_critic.torch = _NoiseByGlobalRow(rank, world)
        actor = train_aid(*_problem(), run_dir, **DDP_RUN)
        torch.save(actor.state_dict(), os.path.join(run_dir, f"actor_rank{rank}.pt"))  # the test's own file
        dist.barrier()  # tear down together: a rank whose gloo peer hangs up first can abort (seen once in CI)
    finally:
        dist.destroy_process_group()


def _spawn_two_ranks(tmp_path, worker=_ddp_worker, extra=()):
    """Run worker (_ddp_worker) on 2 ranks; returns its run folder. On this 2-core CPU under load, gloo sometimes
    aborts a rank at start-up (std::terminate, "terminate called without an active exception"; about 1 run
    in 15 with both cores busy, never seen idle): such a crash, and only such, is retried in a fresh folder."""
    for attempt in range(3):
        run_dir = tmp_path / f"two{attempt}"
        try:
            mp.spawn(worker, args=(2, str(tmp_path / f"store{attempt}"), str(run_dir), *extra), nprocs=2, join=True)
            return run_dir
        except ProcessExitedException as e:
            if e.signal_name != "SIGABRT" or attempt == 2:
                raise


def test_two_gloo_processes_equal_one_process_with_the_whole_batch(tmp_path, monkeypatch):
    """Global batch 4: rank r trains on rows [2r, 2r + 2) of the batch the 1-process run draws (same data,
    masks and K; the rollout noise made a function of the global row, see _NoiseByGlobalRow). With
    the gradients averaged once per optimizer step, the weights and Adam's first moments (which
    would show a gradient scaled by the world size) match the 1-process run's, and both ranks agree."""
    two, one = _spawn_two_ranks(tmp_path), tmp_path / "one"
    monkeypatch.setattr(aid.guidance.actor_critic, "torch", _NoiseByGlobalRow(0, 1))
    train_aid(*_problem(), str(one), **DDP_RUN)
    s2, s1 = run_state(two)["trainer"], run_state(one)["trainer"]
    assert s1["actor"]["conv_out.weight"].abs().max() > 1e-3  # trained away from its zero initialisation
    for name in ("actor", "critic"):
        for k, v in s2[name].items():
            torch.testing.assert_close(v, s1[name][k], rtol=1e-4, atol=1e-5)
    for opt in ("opt_actor", "opt_critic"):
        for i, st in s2[opt]["state"].items():  # float32 sums in another order: relative to the tensor's scale
            want = s1[opt]["state"][i]["exp_avg"]
            assert (st["exp_avg"] - want).abs().max() <= 1e-5 * want.abs().max()
    r0, r1 = (torch.load(two / f"actor_rank{r}.pt", weights_only=True) for r in (0, 1))
    assert_trees_equal(r0, r1)
    assert len(open(two / "log.jsonl").readlines()) == 3  # rank 0 alone writes


LATENT_RUN = dict(cfg=ACConfig(lr_actor=1e-2, lr_critic=1e-2, critic_warmup=0), mask_kinds=["random_box", "pixels50"],
                  batch=4, iters=2, num_steps_choices=[2, 3], log_every=1, **SMALL)


def _latent_problem(files: dict) -> tuple:
    """(backbone, data, problem) of a latent run: the tiny conditional EDM2 net autoguided (g = 2), the images and
    their labels, the tiny VAE (tiny_latent)."""
    from aid.data.datasets import image_dataset
    from aid.latent import LatentProblem, load_latent
    D, codec = load_latent(files["cond"], files["vae"], files["guide"], 2.0)
    data, labels = image_dataset(files["images"])
    return D, data, LatentProblem(D, codec, data, labels, progress=False)


def _latent_worker(rank: int, world: int, store: str, run_dir: str, files: dict):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        aid.guidance.actor_critic.torch = _NoiseByGlobalRow(rank, world)
        D, data, problem = _latent_problem(files)
        train_aid(D, data, run_dir, problem=problem, **LATENT_RUN)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_a_latent_run_on_two_gloo_processes_equals_one_process(tmp_path, monkeypatch):
    """As above, in EDM2's latent space (aid.latent.LatentProblem): each rank encodes its rows and binds their
    class labels; the weights match the 1-process run's."""
    pytest.importorskip("diffusers", reason="the latent pipeline needs diffusers (pip install 'aid-ext[latent]')")
    from tiny_latent import write_latent_files
    files = write_latent_files(tmp_path)
    two, one = _spawn_two_ranks(tmp_path, _latent_worker, (files,)), tmp_path / "one"
    monkeypatch.setattr(aid.guidance.actor_critic, "torch", _NoiseByGlobalRow(0, 1))
    D, data, problem = _latent_problem(files)
    train_aid(D, data, str(one), problem=problem, **LATENT_RUN)
    s2, s1 = run_state(two), run_state(one)
    assert s1["trainer"]["actor"]["conv_out.weight"].abs().max() > 1e-3 and s1["setup"]["problem"]["space"] == "latent"
    for name in ("actor", "critic"):
        for k, v in s2["trainer"][name].items():
            torch.testing.assert_close(v, s1["trainer"][name][k], rtol=1e-4, atol=1e-5)
    assert s2["fingerprints"] == s1["fingerprints"] and s2["setup"] == {**s1["setup"], "world_size": 2}


def test_cli_trains_on_fashion_mnist(tmp_path, fake_fmnist, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AID_FASHION_MNIST", fake_fmnist)
    torch.manual_seed(0)
    tiny = EDMPrecond(img_resolution=32, img_channels=1, model_channels=8, channel_mult=[1], num_blocks=1,
                      attn_resolutions=[], dropout=0.0)
    save_module(tiny, str(tmp_path / "net.safetensors"), "EDMPrecond", tiny.init_kwargs)
    main(["--run-dir", str(tmp_path / "run"), "--iters", "2", "--backbone", str(tmp_path / "net.safetensors"),
          "--mask-kinds", "center_box,half_left", "--batch", "2", "--steps", "2", "--masks-per-kind", "2",
          "--lam", "0.5", "--delta-norm", "--actor", '{"width": 8, "depth": 1}', "--device", "cpu"])
    _, config, extra = read_metadata(str(tmp_path / "run" / "actor.safetensors"))
    assert config["width"] == 8 and extra["iterations"] == 2 and extra["ac_config"]["lam"] == 0.5
    assert extra["ac_config"]["delta_norm"] is True and 0 < extra["param_ratio"] < 1


def test_cli_trains_on_a_folder_of_images(tmp_path):
    from PIL import Image
    torch.manual_seed(0)
    tiny = EDMPrecond(img_resolution=16, img_channels=1, model_channels=8, channel_mult=[1], num_blocks=1,
                      attn_resolutions=[], dropout=0.0)
    save_module(tiny, str(tmp_path / "net.safetensors"), "EDMPrecond", tiny.init_kwargs)
    for res in (16, 8):  # the backbone's size, then a folder the backbone cannot take
        (tmp_path / f"img{res}").mkdir()
        for i in range(3):
            Image.fromarray(np.random.default_rng(i).integers(0, 256, (res, res), dtype=np.uint8)).save(
                tmp_path / f"img{res}" / f"{i}.png")
    args = ["--iters", "1", "--backbone", str(tmp_path / "net.safetensors"), "--mask-kinds", "center_box",
            "--batch", "2", "--steps", "2", "--masks-per-kind", "2", "--actor", '{"width": 8, "depth": 1}']
    main(["--run-dir", str(tmp_path / "run"), "--data", str(tmp_path / "img16")] + args)
    assert read_metadata(str(tmp_path / "run" / "actor.safetensors"))[2]["iterations"] == 1
    with pytest.raises(ValueError, match=r"data must be \[N, 1, 16, 16\].*got \[3, 1, 8, 8\]"):
        main(["--run-dir", str(tmp_path / "run8"), "--data", str(tmp_path / "img8")] + args)


def test_warm_start_from_an_actor_and_a_mismatched_one_is_refused(tmp_path):
    net, data = _problem()
    kw = dict(mask_kinds=["center_box"], batch=4, progress=False, masks_per_kind=4,
              cfg=ACConfig(num_steps=2, critic_warmup=0), actor_kwargs={"width": 8, "depth": 1})
    first = train_aid(net, data, str(tmp_path / "a"), iters=2, **kw)
    path = str(tmp_path / "a" / "actor.safetensors")
    warm = train_aid(net, data, str(tmp_path / "b"), iters=0, init_actor=path, **kw)
    assert_trees_equal(warm.state_dict(), first.state_dict())
    moved = train_aid(net, data, str(tmp_path / "c"), iters=1, init_actor=path, **kw)
    assert any(not torch.equal(moved.state_dict()[k], first.state_dict()[k]) for k in first.state_dict())
    warm_starts = [read_metadata(str(tmp_path / r / "actor.safetensors"))[2].get("init_actor") for r in "ac"]
    assert warm_starts == [None, sha256_of(path)]  # a continued module names the file it continued
    ancestral = train_aid(net, data, str(tmp_path / "e"), iters=0, init_actor=path,  # another η: same weights
                          **{**kw, "actor_kwargs": {"width": 8, "depth": 1, "eta": 1.0}})
    assert ancestral.eta == 1.0
    assert_trees_equal(ancestral.state_dict(), first.state_dict())
    with pytest.raises(ValueError, match="init_actor .* another guidance module .*width: 8 there, 16 here"):
        train_aid(net, data, str(tmp_path / "d"), iters=1, init_actor=path, **{**kw, "actor_kwargs": {"width": 16}})


def test_a_step_aware_actor_warm_starts_from_a_plain_one_and_samples_as_it_did(tmp_path):
    net, data = _problem()
    kw = dict(mask_kinds=["center_box"], batch=4, progress=False, masks_per_kind=4,
              cfg=ACConfig(num_steps=2, critic_warmup=0), actor_kwargs={"width": 8, "depth": 1})
    train_aid(net, data, str(tmp_path / "a"), iters=2, **kw)
    path = str(tmp_path / "a" / "actor.safetensors")
    aware_kw = {**kw, "actor_kwargs": {"width": 8, "depth": 1, "step_aware": True}}
    warm = train_aid(net, data, str(tmp_path / "b"), iters=0, init_actor=path, **aware_kw)
    net_, y, mask = _inputs()
    for K in (2, 5):
        assert torch.equal(sample_aid(net_, warm, y, mask, [1, 2, 3], num_steps=K)[0],
                           sample_aid(net_, load_actor(path), y, mask, [1, 2, 3], num_steps=K)[0])
    trained = train_aid(net, data, str(tmp_path / "c"), iters=2, init_actor=path, num_steps_choices=[2, 3], **aware_kw)
    assert trained.step_embed.linear.weight.abs().sum() > 0  # the step input is learned
    back = load_actor(str(tmp_path / "c" / "actor.safetensors"))
    assert back.config["step_aware"] and torch.equal(back.step_embed.linear.weight, trained.step_embed.linear.weight)
    with pytest.raises(ValueError, match="init_actor .* another guidance module .*step_aware: True there, None here"):
        train_aid(net, data, str(tmp_path / "d"), iters=1, init_actor=str(tmp_path / "c" / "actor.safetensors"), **kw)
    only_step = train_aid(net, data, str(tmp_path / "e"), iters=2, init_actor=path, actor_trainable="step_embed",
                          num_steps_choices=[2, 3], **aware_kw)  # the field kept, only the step input learned
    for name, value in only_step.state_dict().items():
        if name.startswith("step_embed.linear"):
            assert value.abs().sum() > 0, name
        elif not name.startswith("step_embed"):
            assert torch.equal(value, warm.state_dict()[name]), name
    assert run_state(str(tmp_path / "e"))["setup"]["actor_trainable"] == "step_embed"
    with pytest.raises(ValueError, match="actor_trainable 'head' names no parameter .*step_embed"):
        train_aid(net, data, str(tmp_path / "f"), iters=1, init_actor=path, actor_trainable="head", **aware_kw)
    with pytest.raises(ValueError, match="actor_trainable fine-tunes part of a trained actor; pass init_actor"):
        train_aid(net, data, str(tmp_path / "g"), iters=1, actor_trainable="step_embed", **aware_kw)


def test_a_step_aware_actor_sees_the_same_step_in_rollout_training_and_sampling():
    """σ_next is σ_{k+1} of the grid in the rollout, in the trainer's batched re-evaluation and in the sampler."""
    net, data = _problem()
    torch.manual_seed(0)
    actor = GuidanceModule(1, width=8, depth=1, emb=8, step_aware=True)
    for p in (actor.step_embed.linear.weight, actor.conv_out.weight):
        torch.nn.init.normal_(p, std=0.5)  # a field that depends on the step
    mask, cfg = masks("center_box", 4, 8, 0), ACConfig(num_steps=4)
    trainer = aid.guidance.actor_critic.AIDTrainer(net, actor, aid.guidance.networks.Critic(1, width=8, emb=8), cfg)
    X, Ds, A, _ = aid.guidance.actor_critic.rollout(net, actor, data[:4], mask, trainer.sigmas, cfg,
                                           torch.Generator().manual_seed(0), explore=False)
    with torch.no_grad():
        torch.testing.assert_close(trainer.mean_action(X, Ds, data[:4], mask), A, rtol=1e-5, atol=1e-6)
    seen = []
    sample(net, [0], num_steps=4, solver="euler", guidance=lambda x, s, D, sn: seen.append(sn) or torch.zeros_like(x))
    torch.testing.assert_close(torch.cat(seen), trainer.sigmas[1:])


def test_warm_start_of_the_critic_from_another_runsrun_state(tmp_path):
    net, data = _problem()
    kw = dict(mask_kinds=["center_box"], batch=4, progress=False, masks_per_kind=4,
              cfg=ACConfig(num_steps=2, critic_warmup=0), actor_kwargs={"width": 8, "depth": 1},
              critic_kwargs={"width": 8})
    train_aid(net, data, str(tmp_path / "a"), iters=2, **kw)
    state = str(tmp_path / "a" / "state.pt")
    train_aid(net, data, str(tmp_path / "b"), iters=0, init_critic=state, **kw)
    want = torch.load(state, weights_only=True)["trainer"]["critic"]
    assert_trees_equal(torch.load(str(tmp_path / "b" / "state.pt"), weights_only=True)["trainer"]["critic"], want)
    fresh = torch.load(str(tmp_path / "a" / "state.pt"), weights_only=True)  # a run without it resumes as before
    assert "init_critic" not in fresh["setup"]
    with pytest.raises(ValueError, match="init_critic .* another critic .*width: 8 there, 16 here"):
        train_aid(net, data, str(tmp_path / "c"), iters=1, init_critic=state, **{**kw, "critic_kwargs": {"width": 16}})

# --- deployment ---------------------------------------------------------------------------------

def _inputs(B=3):
    net, data = _problem()
    mask = masks("center_box", B, 8, 0)
    return net, mask * data[:B], mask


@pytest.mark.parametrize("solver", ["euler", "heun"])
def test_zero_actor_is_the_unguided_sampler_plus_paste(solver):
    """In the paper's form (project=False; the default projection is tested below)."""
    net, y, mask = _inputs()
    actor = GuidanceModule(1, width=8, depth=1, emb=8)
    x, report = sample_aid(net, actor, y, mask, [1, 2, 3], num_steps=4, solver=solver, project=False)
    if solver == "euler":
        want, _ = paste_baseline(net, y, mask, [1, 2, 3], num_steps=4)
    else:
        unguided = sample(net, [1, 2, 3], num_steps=4, solver="heun")
        want = mask * y + (1 - mask) * unguided
    assert x.shape == (3, *SHAPE) and torch.equal(x, want)
    assert report["nfe"] == (4 if solver == "euler" else 7) and report["vjp"] == 0
    assert report["actor_params"] == sum(p.numel() for p in actor.parameters()) and report["seconds"] > 0


def test_sample_aid_seeds_paste_and_a_checkpoint_path(tmp_path):
    net, y, mask = _inputs()
    torch.manual_seed(0)
    actor = GuidanceModule(1, width=8, depth=1, emb=8)
    torch.nn.init.normal_(actor.conv_out.weight, std=0.1)  # a non-zero field
    save_module(actor, str(tmp_path / "actor.safetensors"), "GuidanceModule", actor.config)
    x, _ = sample_aid(net, actor, y, mask, [5, 6, 7], num_steps=3)
    again, _ = sample_aid(net, str(tmp_path / "actor.safetensors"), y, mask, [5, 6, 7], num_steps=3)
    raw, _ = sample_aid(net, actor, y, mask, [5, 6, 7], num_steps=3, paste=False)
    other, _ = sample_aid(net, actor, y, mask, [5, 6, 8], num_steps=3)
    zero, _ = sample_aid(net, GuidanceModule(1, width=8, depth=1, emb=8), y, mask, [5, 6, 7], num_steps=3)
    assert torch.equal(x, again) and torch.equal(x[:2], other[:2]) and not torch.equal(x[2], other[2])
    assert torch.equal(x, mask * y + (1 - mask) * raw) and not torch.equal(x, zero)  # pasted; the actor steers
    assert aid.sample_aid is sample_aid


def test_sample_aid_projects_the_known_pixels_every_step_by_default():
    """With a zero field, AID by default is the replacement sampler (the known pixels set to y noised to σ_{i+1}
    after every step); project=False is the unguided sampler with y pasted at the end."""
    net, y, mask = _inputs()
    zero = GuidanceModule(1, width=8, depth=1, emb=8)
    replacement = sample(net, [5, 6, 7], num_steps=3, solver="euler", mask=mask, y=mask * y)
    assert torch.equal(sample_aid(net, zero, y, mask, [5, 6, 7], num_steps=3)[0], replacement)
    plain = sample(net, [5, 6, 7], num_steps=3, solver="euler")
    pasted = sample_aid(net, zero, y, mask, [5, 6, 7], num_steps=3, project=False)[0]
    assert torch.equal(pasted, mask * y + (1 - mask) * plain) and not torch.equal(pasted, replacement)


def test_guidance_scale_multiplies_the_field():
    """s = 1 is the trained field, s = 0 the unguided sampler + paste; in between the first step moves by s·Δr·μ."""
    net, y, mask = _inputs()
    torch.manual_seed(0)
    actor = GuidanceModule(1, width=8, depth=1, emb=8)
    torch.nn.init.normal_(actor.conv_out.weight, std=0.1)
    def run(s, k=3):  # the paper's form (no projection), so that s = 0 is the plain sampler
        return sample_aid(net, actor, y, mask, [5, 6, 7], num_steps=k, guidance_scale=s, paste=False,
                          project=False)[0]

    assert torch.equal(run(1.0), sample_aid(net, actor, y, mask, [5, 6, 7], num_steps=3, paste=False,
                                            project=False)[0])
    assert torch.equal(run(0.0), sample(net, [5, 6, 7], num_steps=3, solver="euler"))
    # one step: x_1 = Step_D(x_0) + Δr·s·μ is affine in s
    torch.testing.assert_close(run(0.5, 1), (run(0.0, 1) + run(1.0, 1)) / 2, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(run(0.5), run(1.0))


def test_sample_aid_bad_inputs(tmp_path):
    net, y, mask = _inputs()
    actor = GuidanceModule(1, width=8, depth=1, emb=8)
    with pytest.raises(ValueError, match=r"mask must be \[3, 1, 8, 8\]"):
        sample_aid(net, actor, y, mask[:, :, :4], [1, 2, 3])
    with pytest.raises(ValueError, match=r"y must be \[B, 1, 8, 8\]"):
        sample_aid(net, actor, y.expand(3, 3, 8, 8), mask, [1, 2, 3])
    with pytest.raises(ValueError, match="built for 3-channel images"):
        sample_aid(net, GuidanceModule(3, width=8, depth=1, emb=8), y, mask, [1, 2, 3])
    with pytest.raises(ValueError, match="one seed per image: 2 seeds for 3 images"):
        sample_aid(net, actor, y, mask, [1, 2])
    with pytest.raises(FileNotFoundError, match="python -m aid.guidance.train"):
        sample_aid(net, str(tmp_path / "none.safetensors"), y, mask, [1, 2, 3])
    for bad in (-0.5, float("nan")):
        with pytest.raises(ValueError, match="guidance_scale must be >= 0"):
            sample_aid(net, actor, y, mask, [1, 2, 3], guidance_scale=bad)


def test_scale_objective_is_the_trainers_J_at_one_and_pure_psi_at_zero():
    """benchmarks/aid_scale_objective.py: at s = 1 its J is AIDTrainer.evaluate's (same rollout, same noise); at
    s = 0 the control energy is 0 and J = Ψ; a stronger field costs more energy here."""
    from benchmarks.aid_scale_objective import objective
    net, data = _problem()
    mask = masks("center_box", 8, 8, 0)
    torch.manual_seed(0)
    actor = GuidanceModule(1, width=8, depth=1, emb=8)
    torch.nn.init.normal_(actor.conv_out.weight, std=0.1)
    cfg = ACConfig(num_steps=4)
    trainer = aid.guidance.actor_critic.AIDTrainer(net, actor, aid.guidance.networks.Critic(1, width=8, emb=8), cfg)
    at_one = objective(net, actor, data[:8], mask, cfg, 1.0)
    assert at_one["J"] == pytest.approx(trainer.evaluate(data[:8], mask, torch.Generator().manual_seed(0)), rel=1e-6)
    at_zero = objective(net, actor, data[:8], mask, cfg, 0.0)
    assert at_zero["energy"] == 0 and at_zero["J"] == at_zero["psi"]
    assert objective(net, actor, data[:8], mask, cfg, 2.0)["energy"] > at_one["energy"] > 0


def test_an_actor_on_ddim_eta_steps_trains_ships_its_eta_and_deploys_with_it(tmp_path):
    """GuidanceModule(eta=1): rollouts take DDIM(1) steps; the eta is in the shipped config, and sample_aid uses
    it unless told otherwise (a zero module on η = 1 is the η = 1 sampler with projection, then the paste)."""
    net, data = _problem()
    cfg = ACConfig(lr_actor=1e-2, lr_critic=1e-2, critic_warmup=1, num_steps=3)
    actor = train_aid(net, data, str(tmp_path), cfg=cfg, mask_kinds=["center_box"], batch=4, iters=3,
                      actor_kwargs=dict(width=8, depth=1, emb=8, eta=1.0, project=True),
                      critic_kwargs=SMALL["critic_kwargs"], masks_per_kind=4, progress=False)
    shipped = load_actor(str(tmp_path / "actor.safetensors"))
    assert shipped.config["eta"] == 1.0 and shipped.eta == 1.0 and all(torch.isfinite(p).all()
                                                                         for p in actor.parameters())
    zero = GuidanceModule(1, width=8, depth=1, emb=8, eta=1.0)
    y, m = data[:2], masks("center_box", 2, 8, 1)
    x, _ = sample_aid(net, zero, y, m, [0, 1], num_steps=4)
    ref = sample(net, [0, 1], num_steps=4, solver="euler", mask=m, y=y, eta=1.0)
    torch.testing.assert_close(x, torch.where(m.bool(), y, ref))
    assert not torch.equal(x, sample_aid(net, zero, y, m, [0, 1], num_steps=4, eta=0.0)[0])
    sigmas = edm_sigmas(4, device="cpu", dtype=torch.float32)
    ends = [rollout(net, GuidanceModule(1, eta=e), y, m, sigmas, ACConfig(num_steps=4),
                    torch.Generator().manual_seed(0), explore=False)[3] for e in (0.0, 1.0)]
    assert not torch.allclose(ends[0], ends[1])  # the rollout steps the actor's dynamics
    with pytest.raises(ValueError, match="eta > 0 rolls DDIM"):
        AIDTrainer(net, GuidanceModule(1, eta=0.5), aid.guidance.networks.Critic(1), ACConfig(solver="heun"))
