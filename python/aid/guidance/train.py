"""Training AID's guidance module (docs/method.md) on a frozen backbone: minibatches of data
and masks, AIDTrainer.step, a progress bar with the running losses, a JSONL log, atomic
snapshots of the actor (actor.safetensors, what ships) and of everything else (state.pt, for
an exact resume after a kill), and multi-process training under torchrun.

    python -m aid.guidance.train --run-dir runs/aid --iters 20000 [--steps 5,9,19] [--mask-kinds ...]
    python -m aid.guidance.train --objective denoising --run-dir runs/warm ...   # a warm start for --init-actor
    torchrun --nproc_per_node=8 -m aid.guidance.train --run-dir runs/aid --iters 20000 --batch 512

Multi-process (torch.distributed; NCCL on GPUs, gloo on CPU; the collectives are in
aid.guidance.distributed). `batch` is the global batch: the
run does not depend on how many processes share it, apart from the rollout noise.
- Data, masks and the step count K are drawn for the whole batch from a generator that every
  rank seeds alike; rank r takes rows [r·b, (r+1)·b) of it, b = batch / world size. The
  rollout noise comes from a generator per rank (seeded from seed and rank), since
  AIDTrainer.rollout draws a shard's noise in one call.
- Gradients are averaged by an all-reduce of the flattened gradients in a step pre-hook of each
  optimizer: exactly once per optimizer step, for the critic and the actor. Not by
  DistributedDataParallel: AIDTrainer.actor_step takes the actor's gradient with
  torch.autograd.grad, which fires none of DDP's hooks ("This module doesn't work with
  torch.autograd.grad", DDP's docstring; measured here: the ranks' gradients stay apart, silently),
  and the lookahead update runs the critic with grad enabled for a backward that never reaches
  the critic's parameters. The hook sees the gradients actor_step sets, whichever estimator.
  Weights start equal on every rank (same seed, or the same state.pt broadcast from rank 0).
- Only rank 0 reads and writes files; the stop and snapshot decisions are agreed by all ranks.
Losses are batch means, so the average of the shards' gradients is the gradient of the whole
batch; with ACConfig.delta_norm the δ normalisation uses the shard's standard deviation.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, fields, replace

import torch
import torch.distributed as dist

from aid.core.argtypes import count, finite_float, json_object, step_counts
from aid.core.checkpoint import sha256_of, writable_dir
from aid.core.common import device_of
from aid.core.distributed import all_mean, any_rank, rank_and_world
from aid.core.nn import n_params
from aid.core.training import SNAPSHOT_SECONDS
from aid.data.masks import KINDS, mask_pool
from aid.guidance.actor_critic import ACConfig, AIDTrainer, check_config, share_optimizers
from aid.guidance.denoise import DenoisingTrainer
from aid.guidance.distributed import average_gradients, init_distributed
from aid.guidance.networks import Critic, GuidanceModule
from aid.guidance.rundir import (
    ActorEMA,
    TrainingDiverged,
    all_finite,
    fingerprints,
    resume,
    save_snapshot,
    trim_log,
)
from aid.guidance.warm import freeze_all_but, warm_start, warm_start_critic

TRAIN_MASK_SEED = 20_000  # mask pools use masks(kind, n, res, TRAIN_MASK_SEED + seed), never the benchmark's 10_000 + v
OBJECTIVES = {"actor_critic": AIDTrainer, "denoising": DenoisingTrainer}  # the trainer of each objective
AC_OPTIONS = [f for f in fields(ACConfig) if f.name != "num_steps"]  # ACConfig's CLI options (K is --steps)


def build_trainers(backbone, cfg: ACConfig, actor_kwargs: dict, critic_kwargs: dict, steps: list[int], seed: int,
                   objective: str = "actor_critic"):
    """One trainer of the objective (OBJECTIVES) per step count K, all sharing one actor, one critic and their
    two optimizers (each trainer keeps its own σ grid; the update rules are untouched). The initial weights
    depend on the seed only."""
    device = device_of(backbone)
    base = dict(img_channels=backbone.img_channels, sigma_data=backbone.sigma_data)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        actor = GuidanceModule(**{**base, **actor_kwargs}).to(device)
        critic = Critic(**{**base, **critic_kwargs}).to(device)
    return share_optimizers({k: OBJECTIVES[objective](backbone, actor, critic, replace(cfg, num_steps=k), device)
                             for k in steps})


class PixelProblem:
    """What train_aid trains on when the backbone works on the images themselves: the identity. A problem maps
    this rank's rows of data (their indices idx in data, the images, the masks) to (x0, mask, y) in the space the
    backbone works in (y None: the trainer's m⊙x0); aid.latent.LatentProblem is EDM2's latent space. setup and
    fingerprints are recorded in the run folder (a resume on another problem is refused); empty here, so that
    runs started before problems existed still resume."""

    setup: dict = {}

    def image_shape(self, backbone) -> tuple[int, int, int]:
        """(C, H, W) of the data (and H of the masks)."""
        return backbone.img_channels, backbone.img_resolution, backbone.img_resolution

    def check(self, trainer) -> None:
        """Refuse an actor this problem cannot train (none here)."""

    def fingerprints(self) -> dict:
        return {}

    def __call__(self, idx, images, mask, generator):
        return images, mask, None


def draw_shard(data, pool, gen: torch.Generator, batch: int, rank: int, world: int, steps: list[int]):
    """This rank's rows of a global batch drawn from the shared generator: (their indices in data, x0, mask, K)."""
    idx = torch.randint(len(data), (batch,), generator=gen)
    midx = torch.randint(len(pool), (batch,), generator=gen)
    k = steps[int(torch.randint(len(steps), (1,), generator=gen))] if len(steps) > 1 else steps[0]
    rows = slice(rank * batch // world, (rank + 1) * batch // world)
    return idx[rows], data[idx[rows]], pool[midx[rows]], k


def _check(shape, data, mask_kinds, batch: int, iters: int, seed: int, world: int, steps, **counts) -> None:
    for name, v in counts.items():  # masks_per_kind, snapshot_every, log_every
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"train_aid: {name} must be >= 1, got {v}")
    if data.dim() != 4 or tuple(data.shape[1:]) != tuple(shape):
        raise ValueError(f"train_aid: data must be [N, {', '.join(map(str, shape))}] like the backbone's images, "
                         f"got {list(data.shape)}")
    if not mask_kinds or any(k not in KINDS for k in mask_kinds):
        raise ValueError(f"train_aid: mask_kinds must be a non-empty list from {', '.join(KINDS)}; got {mask_kinds}")
    if iters < 0 or seed < 0 or batch < world or batch % world:
        raise ValueError(f"train_aid: need iters >= 0, seed >= 0 and a batch divisible by the {world} process(es); "
                         f"got iters={iters}, seed={seed}, batch={batch}")
    if not steps or any(int(k) < 1 for k in steps):
        raise ValueError(f"train_aid: num_steps_choices must be step counts >= 1, got {steps}")


class RunningMeans:
    """Sums of the logged numbers (a trainer's METRICS) since the last log line; the bar and the log show their
    means."""

    def __init__(self, metrics: tuple[str, ...]):
        self.metrics, self.sums, self.n = metrics, dict.fromkeys(metrics, 0.0), 0

    def add(self, values: list[float]) -> None:
        for name, v in zip(self.metrics, values):
            self.sums[name] += v
        self.n += 1

    def means(self) -> dict:
        return {name: v / self.n for name, v in self.sums.items()}


def train_aid(backbone, data: torch.Tensor, run_dir: str, *, cfg: ACConfig = ACConfig(), actor_kwargs=None,
              critic_kwargs=None, mask_kinds, iters: int, batch: int = 64, seed: int = 0, progress=True,
              max_seconds=None, snapshot_every=500, log_every=10, masks_per_kind=1000,
              num_steps_choices=None, init_actor: str | None = None, init_critic: str | None = None,
              actor_trainable: str | None = None, keep_snapshots=False, problem=None,
              ema_halflife: float = 0, ema_rampup: float = 0, objective: str = "actor_critic") -> GuidanceModule:
    """Train AID's actor (and critic) on data [N, C, H, W] in [-1, 1] with masks of the given kinds;
    resumes from run_dir/state.pt (refused if the setup differs). Returns the actor.

    problem        maps images and masks to the backbone's space (PixelProblem, the default: the identity;
                   aid.latent.LatentProblem: EDM2 latents through a VAE, data and masks in pixels).

    batch          the global batch (split over the processes of an initialised process group).
    num_steps_choices  when given, each iteration draws K from it (replacing cfg.num_steps), so one
                   module serves several step counts.
    init_actor     an actor.safetensors to start the actor from (a warm start: the critic and Adam start
                   fresh, and cfg.critic_warmup fits the critic to the warm-started actor first).
    init_critic    a state.pt of another run (its actor.safetensors' companion) to start the critic from.
    actor_trainable  a parameter-name prefix: train only the actor's parameters whose names start with it, e.g.
                   "step_embed" to teach a warm-started module the step input while its field stays put.
    masks_per_kind a fixed pool per kind, from seeds disjoint from aid.data.masks.benchmark_masks'.
    keep_snapshots also keep every snapshot's actor as run_dir/actor_ITER.safetensors (for choosing
                   one on a validation split: benchmarks/tune_baselines.py --aid).
    ema_halflife   > 0: actor.safetensors holds an exponential moving average of the actor's weights with this
                   half-life in iterations (aid.guidance.rundir.ActorEMA); may be added to a run on resume.
    ema_rampup     > 0: the EMA's half-life at iteration i is min(ema_halflife, ema_rampup·i), so that early
                   snapshots are not held back by the initial weights; may be set or changed on resume.
    objective      "actor_critic" (AIDTrainer), or "denoising" (aid.guidance.denoise.DenoisingTrainer: the actor
                   alone, regressed as a correction of the backbone's denoiser on noised images; a warm start
                   for an actor–critic run's init_actor).
    Writes run_dir/actor.safetensors (the guidance module, its config and the run's numbers in the
    metadata) and run_dir/state.pt every snapshot_every iterations and at the end, and
    run_dir/log.jsonl (means over log_every iterations, and the last iteration's K). Stops after
    `iters` iterations in total, or after max_seconds of this call.
    The run folder (aid.guidance.rundir) records fingerprints of the backbone, data and masks and refuses to
    resume on others; a resume may lower cfg.lr_actor and cfg.lr_critic. A step with non-finite losses or
    weights raises TrainingDiverged before anything is written: the last good snapshot stays."""
    rank, world = rank_and_world()
    problem = problem or PixelProblem()
    steps = [int(k) for k in num_steps_choices] if num_steps_choices is not None else [cfg.num_steps]
    shape = problem.image_shape(backbone)
    _check(shape, data, list(mask_kinds), batch, iters, seed, world, steps, masks_per_kind=masks_per_kind,
           snapshot_every=snapshot_every, log_every=log_every)
    check_config(cfg)
    if objective not in OBJECTIVES:
        raise ValueError(f"train_aid: objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if ema_rampup and not ema_halflife:
        raise ValueError("train_aid: ema_rampup (--ema-rampup) shapes an EMA; set ema_halflife (--ema-halflife) too")
    if rank == 0:
        writable_dir(run_dir, "train_aid: run_dir (--run-dir)")
    trainers = build_trainers(backbone, cfg, actor_kwargs or {}, critic_kwargs or {}, steps, seed, objective)
    trainer, device = trainers[steps[0]], device_of(backbone)
    problem.check(trainer)
    setup = json.loads(json.dumps(dict(
        cfg=asdict(cfg), num_steps_choices=num_steps_choices and steps, actor=trainer.actor.config,
        critic=trainer.critic.config, mask_kinds=list(mask_kinds), masks_per_kind=masks_per_kind, batch=batch,
        seed=seed, world_size=world, backbone=dict(cls=type(backbone).__name__, params=n_params(backbone)),
        init_actor=init_actor and sha256_of(init_actor),
        **({"init_critic": sha256_of(init_critic)} if init_critic else {}),  # absent: older runs still resume
        **({"actor_trainable": actor_trainable} if actor_trainable else {}),
        **({"problem": problem.setup} if problem.setup else {}),
        **({"ema_halflife": ema_halflife} if ema_halflife else {}),
        **({"ema_rampup": ema_rampup} if ema_rampup else {}),
        **({"objective": objective} if objective != "actor_critic" else {}))))
    if init_actor:
        warm_start(trainer.actor, init_actor)
    if init_critic:
        warm_start_critic(trainer.critic, init_critic)
    if actor_trainable:
        if not init_actor:  # a fresh actor's zero output layer gives every other parameter a zero gradient
            raise ValueError("train_aid: actor_trainable fine-tunes part of a trained actor; pass init_actor too")
        freeze_all_but(trainer.actor, actor_trainable)
    pool = mask_pool(list(mask_kinds), masks_per_kind, shape[1], TRAIN_MASK_SEED + seed)
    data_gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator(device).manual_seed((seed + 1) * 1_000_003 + rank)
    prints = {**fingerprints(backbone, data, pool), **problem.fingerprints()}
    ema = ActorEMA(trainer.actor, ema_halflife, ema_rampup) if ema_halflife else None
    it, seconds = resume(os.path.join(run_dir, "state.pt"), setup, prints, trainer, data_gen, noise_gen, rank, world,
                         ema)
    saved_it = it  # the iteration of the last snapshot on disk
    if world > 1:
        average_gradients(trainer.opt_actor, world)
        average_gradients(trainer.opt_critic, world)
    t_start = t_last = time.time()

    def elapsed() -> float:
        return round(seconds + time.time() - t_start, 1)

    def snapshot() -> None:
        nonlocal saved_it
        save_snapshot(run_dir, trainer, data_gen, noise_gen, it, elapsed(), setup, prints, rank, world,
                      keep_snapshots, ema)
        saved_it = it

    def diverged(values: list[float]) -> str | None:
        """What went non-finite in the step just taken (the same on every rank: the losses are averaged over
        the ranks, the weights are equal), or None."""
        bad = [name for name, v in zip(trainer.METRICS, values) if not math.isfinite(v)]
        if not all_finite(trainer.actor, trainer.critic):
            bad.append("the weights")
        return ", ".join(bad) or None

    log_path = os.path.join(run_dir, "log.jsonl")
    if rank == 0:
        os.makedirs(run_dir, exist_ok=True)
        trim_log(log_path, it)  # lines after the snapshot resumed from would repeat
    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm  # optional dependency, only for the progress bar
        desc = "AID actor–critic" if objective == "actor_critic" else "AID denoising warm start"
        bar = tqdm(total=iters, initial=it, desc=desc, dynamic_ncols=True)
    window = RunningMeans(trainer.METRICS)
    try:
        with open(log_path if rank == 0 else os.devnull, "a") as log:
            while it < iters:
                stop, due = any_rank([max_seconds is not None and time.time() - t_start >= max_seconds,
                                      time.time() - t_last > SNAPSHOT_SECONDS], world)
                if stop:
                    break
                idx, x0, mask, k = draw_shard(data, pool, data_gen, batch, rank, world, steps)
                x0, mask, y = problem(idx, x0.to(device), mask.to(device), noise_gen)
                trainers[k].iteration = it  # the trainers share one count (warm-up, learning-rate schedule)
                out = trainers[k].step(x0, mask, noise_gen, y=y)
                values = all_mean([out[m] for m in trainer.METRICS], world)
                what = diverged(values)
                if what:
                    raise TrainingDiverged(
                        f"train_aid: training diverged at iteration {it + 1} ({what} not finite); nothing of it "
                        f"was saved: {run_dir} keeps its last good snapshot (iteration {saved_it}). Resume from it "
                        f"with lower learning rates: run the same command again with smaller --lr-actor and "
                        f"--lr-critic (ACConfig.lr_actor, lr_critic; now {cfg.lr_actor:g} and {cfg.lr_critic:g}), "
                        "e.g. ten times smaller.")
                it += 1
                if ema is not None:
                    ema.update(trainer.actor, it)
                window.add(values)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({name: f"{v:.4g}" for name, v in window.means().items()})
                if it % log_every == 0 or it == iters:
                    means = {name: round(v, 6) for name, v in window.means().items()}
                    log.write(json.dumps({"iter": it, **means, "last_K": k, "seconds": elapsed()}) + "\n")
                    log.flush()  # one line per write: a kill leaves at most a cut line, which a resume drops
                    window = RunningMeans(trainer.METRICS)
                if it % snapshot_every == 0 or due:
                    snapshot()
                    t_last = time.time()
        snapshot()
    finally:
        if bar is not None:
            bar.close()  # before any error is printed: a bar closed later would be drawn again below it
    return ema.module if ema else trainer.actor


# The command line (`aid train`, python -m aid.guidance.train): it only parses, then calls train_aid.

DESCRIPTION = "Train AID's guidance module on a frozen EDM backbone (resumable; multi-process under torchrun)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of a training run (every ACConfig option among them, with its default); run reads them."""
    from aid.edm import DEFAULT_BACKBONE
    p.add_argument("--run-dir", required=True, help="folder for actor.safetensors, state.pt, log.jsonl")
    p.add_argument("--iters", type=count(0), required=True)
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, help="EDM .pkl or .safetensors (default: the bundled one)")
    p.add_argument("--data", default=None, help="training images: a folder or an EDM dataset zip, at the backbone's "
                                                 "resolution and channels (default: Fashion-MNIST's training split)")
    p.add_argument("--mask-kinds", default=",".join(KINDS), help="comma-separated aid.data.masks kinds")
    p.add_argument("--batch", type=count(1), default=64, help="global batch, split over the processes")
    p.add_argument("--steps", type=step_counts, default=str(ACConfig.num_steps),
                   help="K, rollout steps; a comma-separated list draws K from it every iteration")
    p.add_argument("--seed", type=count(0), default=0)
    p.add_argument("--max-seconds", type=finite_float(0), default=None, help="stop this call after so many seconds")
    p.add_argument("--device", default=None, help="default: the (local) GPU if there is one, else the CPU")
    p.add_argument("--masks-per-kind", type=count(1), default=1000)
    p.add_argument("--snapshot-every", type=count(1), default=500)
    p.add_argument("--keep-snapshots", action="store_true",
                   help="also keep each snapshot's actor as actor_ITER.safetensors (to choose one on validation)")
    p.add_argument("--ema-halflife", type=finite_float(0), default=0, metavar="ITERS",
                   help="ship an EMA of the actor's weights with this half-life in iterations (0: the last weights); "
                        "may be added on resume")
    p.add_argument("--ema-rampup", type=finite_float(0), default=0, metavar="RATIO",
                   help="cap the EMA's half-life at RATIO × the iteration, so that early snapshots forget the "
                        "initial weights (e.g. 0.1: 25 iterations at iteration 250); 0: off; may be set on resume")
    p.add_argument("--init-actor", default=None, help="warm start: an actor.safetensors to start the actor from")
    p.add_argument("--init-critic", default=None, help="warm start: another run's state.pt to start the critic from")
    p.add_argument("--objective", choices=list(OBJECTIVES), default="actor_critic",
                   help="actor_critic (AID's), or denoising: the actor alone, regressed as a correction of the "
                        "backbone's denoiser (one backbone call per image, no critic), a warm start for --init-actor")
    p.add_argument("--actor-trainable", default=None, metavar="PREFIX",
                   help="train only the actor's parameters whose names start with PREFIX (e.g. step_embed)")
    p.add_argument("--actor", type=json_object, default="{}",
                   help="GuidanceModule keyword arguments as JSON, e.g. '{\"width\": 32}'")
    p.add_argument("--critic", type=json_object, default="{}", help="Critic keyword arguments as JSON")
    for f in AC_OPTIONS:  # every ACConfig option, with its default (numbers finite; ranges: check_config)
        kind = type(f.default)
        p.add_argument("--" + f.name.replace("_", "-"), default=f.default, help=f"ACConfig.{f.name} ({f.default})",
                       **({"action": argparse.BooleanOptionalAction} if kind is bool
                          else {"type": finite_float() if kind is float else kind}))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=DESCRIPTION)
    add_arguments(p)
    return p


def pixel_problem(a: argparse.Namespace, device) -> tuple:
    """(backbone, data, problem) of a pixel run: an EDM backbone, --data or Fashion-MNIST's training split."""
    from aid.data.datasets import fashion_mnist, image_dataset
    from aid.edm import load
    backbone = load(a.backbone, device)
    data, _ = image_dataset(a.data) if a.data else fashion_mnist("train", backbone.img_resolution)
    return backbone, data, PixelProblem()


def run(a: argparse.Namespace, load_problem=pixel_problem) -> None:
    """Train from parsed flags (add_arguments): join torchrun's process group if there is one, load the backbone,
    the data and the problem (load_problem(a, device): pixel_problem, or `aid train --vae`'s latent one),
    train_aid, and leave the process group when every rank is done."""
    steps = a.steps
    cfg = ACConfig(num_steps=steps[0], **{f.name: getattr(a, f.name) for f in AC_OPTIONS})
    check_config(cfg)  # before any loading
    writable_dir(a.run_dir, "--run-dir")
    device = init_distributed(a.device)
    backbone, data, problem = load_problem(a, device)
    actor = train_aid(backbone, data, a.run_dir, cfg=cfg, actor_kwargs=a.actor,
                      critic_kwargs=a.critic, mask_kinds=a.mask_kinds.split(","), iters=a.iters,
                      batch=a.batch, seed=a.seed, max_seconds=a.max_seconds, snapshot_every=a.snapshot_every,
                      masks_per_kind=a.masks_per_kind, num_steps_choices=steps if len(steps) > 1 else None,
                      init_actor=a.init_actor, init_critic=a.init_critic, actor_trainable=a.actor_trainable,
                      keep_snapshots=a.keep_snapshots, problem=problem, ema_halflife=a.ema_halflife,
                      ema_rampup=a.ema_rampup, objective=a.objective)
    if rank_and_world()[0] == 0:
        print(f"guidance module: {n_params(actor):,} parameters ({n_params(actor) / n_params(backbone):.2%} of the "
              f"backbone), {os.path.join(a.run_dir, 'actor.safetensors')}")
    if dist.is_initialized():
        dist.barrier()  # every rank done before any tears down (gloo can abort a rank whose peer left first)
        dist.destroy_process_group()


def main(argv=None) -> None:
    run(parser().parse_args(argv))


if __name__ == "__main__":
    main()
