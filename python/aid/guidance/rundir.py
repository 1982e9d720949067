"""The run folder of aid.guidance.train: RUN/state.pt (everything an exact resume needs), RUN/actor.safetensors
(the module that ships) and RUN/log.jsonl.

- The setup a run was started with (configurations, mask kinds, batch, seed, ...) is recorded in state.pt and a
  resume with another one is refused, the differences listed; only the learning rates, the EMA and the networks' steps
  per rollout may change (RESUMABLE), so that a diverged run goes on from its last snapshot with lower rates, a noisy
  one with an EMA, and a copy of a run's folder forks it with other steps per rollout.
- Fingerprints of what the run trains on (the backbone's weights, the data, the mask pool) are recorded beside
  the setup and checked on every resume, naming the mismatch: the setup alone holds only the backbone's class
  and size. A state.pt from before fingerprints resumes, with a note, and records them from then on.
- Snapshots are written atomically (temp file + rename), and only of finite states: a diverged step raises
  TrainingDiverged before anything is written, so the last good snapshot stays.
- With an EMA of the actor (ActorEMA), actor.safetensors holds the EMA's weights and state.pt both; an EMA added
  on resume starts from the actor's weights there.
- On resume the log is trimmed to the snapshot's iteration, so that iterations redone after a kill are logged
  once (a line cut short by the kill goes too).
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import sys
from dataclasses import asdict

import torch
import torch.distributed as dist

from aid.core.checkpoint import atomic_write, save_module, tensors_fingerprint
from aid.core.nn import n_params

# setup keys a resume may change: lower rates after a divergence, an EMA of the actor added, its half-life or ramp-up
# changed, how many steps each network takes on one rollout (an ACConfig field newer than the run: with_new_fields)
RESUMABLE = ("cfg.lr_actor", "cfg.lr_critic", "cfg.critic_updates", "cfg.actor_updates", "ema_halflife", "ema_rampup")
FINGERPRINTS = {"backbone": "another backbone (its weights differ: the setup records only the class and size)",
                "data": "another data set", "masks": "other masks (the mask pool differs)",
                "vae": "another VAE (its weights differ)", "labels": "other class labels"}  # the last two: latent runs


class ActorEMA:
    """An exponential moving average of the actor's weights, with a half-life in iterations: the module that
    ships. The actor's weights move with the critic's noise from one iteration to the next; their average over a
    few hundred iterations scores better on validation than any one snapshot (docs/notes/results-notebook.md).
    rampup > 0 caps the half-life at rampup·iteration (EDM's ema_rampup_ratio): without it an EMA started with the
    run still holds 0.5^(i/halflife) of the initial weights at iteration i (42 % at i = 250 for a half-life of
    200), so its early snapshots lag far behind the actor."""

    def __init__(self, actor: torch.nn.Module, halflife: float, rampup: float = 0.0):
        self.halflife, self.rampup = halflife, rampup
        self.module = copy.deepcopy(actor).requires_grad_(False)

    def halflife_at(self, iteration: int) -> float:
        return min(self.halflife, self.rampup * iteration) if self.rampup > 0 else self.halflife

    @torch.no_grad()
    def update(self, actor: torch.nn.Module, iteration: int) -> None:
        """The EMA after the step that made `iteration` (counted from 1)."""
        hl = self.halflife_at(iteration)
        beta = 0.5 ** (1 / hl) if hl > 0 else 0.0
        for p_ema, p in zip(self.module.parameters(), actor.parameters()):
            p_ema.lerp_(p, 1 - beta)

    def restart(self, actor: torch.nn.Module, state: dict | None) -> None:
        """From a resumed run's state.pt: its EMA, or (none there) the actor's weights."""
        self.module.load_state_dict(state if state is not None else actor.state_dict())


class TrainingDiverged(FloatingPointError):
    """A training step gave non-finite losses or weights; nothing of it was saved."""


def fingerprints(backbone, data: torch.Tensor, pool: torch.Tensor) -> dict:
    """SHA-256 fingerprints of the backbone's weights (parameters and buffers), the data and the mask pool."""
    return {"backbone": tensors_fingerprint(backbone.state_dict()), "data": tensors_fingerprint({"data": data}),
            "masks": tensors_fingerprint({"masks": pool})}


def all_finite(*modules: torch.nn.Module) -> bool:
    """Every parameter of the modules is finite (one read-back for all of them)."""
    flags = [torch.isfinite(p).all() for m in modules for p in m.parameters()]
    return bool(torch.stack(flags).all()) if flags else True


def differences(old: dict, new: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """(dotted key, old value, new value) for every leaf where two nested dicts differ."""
    out = []
    for k in sorted(old.keys() | new.keys()):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append((prefix + k, a, b))
    return out


def with_new_fields(old_setup: dict, cfg) -> dict:
    """A run's recorded setup with the ACConfig fields added to the code since it started, at their defaults (what
    it ran with), so that a new field differs on resume only where it is set otherwise."""
    if "cfg" not in old_setup:
        return old_setup
    return {**old_setup, "cfg": {**asdict(type(cfg)()), **old_setup["cfg"]}}


def described(old: dict, new: dict) -> str:
    """differences(old, new) as one readable line, "key: old there, new here; ..." (old: the file's)."""
    return "; ".join(f"{k}: {o!r} there, {n!r} here" for k, o, n in differences(old, new))


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def resume(state_path: str, setup: dict, prints: dict, trainer, data_gen, noise_gen, rank: int, world: int,
           ema: ActorEMA | None = None):
    """Rank 0 reads state.pt (if any) and hands it to every rank; checks the setup and the fingerprints against
    it, restores the trainer, the EMA and the generators and applies changed learning rates; returns (iteration,
    seconds). Every rank raises alike on a mismatch."""
    box = [torch.load(state_path, map_location="cpu", weights_only=True)
           if rank == 0 and os.path.exists(state_path) else None]
    if world > 1:
        dist.broadcast_object_list(box, src=0)
    s = box[0]
    if s is None:
        return 0, 0.0
    run_dir = os.path.dirname(state_path)
    changed = differences(with_new_fields(s["setup"], trainer.cfg), setup)
    refused = [d for d in changed if d[0] not in RESUMABLE]
    if refused:
        raise ValueError(f"train_aid: {run_dir} holds a run with another setup "
                         f"({'; '.join(f'{k}: {o!r} there, {n!r} here' for k, o, n in refused)}); "
                         f"refusing to resume it; use another run_dir")
    recorded = s.get("fingerprints")
    if recorded is None:
        if rank == 0:
            _note(f"train_aid: {run_dir} predates fingerprints; resuming it unchecked, and recording those of its "
                  "backbone, data and masks from now on")
    else:
        for name, what in FINGERPRINTS.items():
            if name in recorded and recorded[name] != prints[name]:
                raise ValueError(f"train_aid: {run_dir} was started on {what}: {name} fingerprint "
                                 f"{recorded[name][:12]}… there, {prints[name][:12]}… here; refusing to resume it; "
                                 f"use the {name} it was started with, or another run_dir")
    trainer.load_state_dict(s["trainer"])
    if ema is not None:
        ema.restart(trainer.actor, s.get("ema"))
    if any(k.startswith("cfg.lr") for k, _, _ in changed):  # the optimizers restored the old rates
        for opt, lr in ((trainer.opt_actor, trainer.cfg.lr_actor), (trainer.opt_critic, trainer.cfg.lr_critic)):
            for group in opt.param_groups:
                group["lr"] = lr  # cfg.lr_decay_iters > 0: set_learning_rates rescales it every step
    if changed and rank == 0:
        _note(f"train_aid: resuming {run_dir} at iteration {s['iter']} with "
              + ", ".join(f"{k.split('.')[-1]} {n} (was {o})" for k, o, n in changed))
    data_gen.set_state(s["data_gen"])
    noise_gen.set_state(s["noise_gens"][rank])
    return s["iter"], s["seconds"]


def trim_log(path: str, it: int) -> None:
    """Keep the lines of log.jsonl up to iteration it (those of the snapshot a run resumes from); a line that does
    not parse (cut short by a kill) goes too. Rewritten atomically, only when something goes."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = f.read().splitlines(keepends=True)
    keep = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("iter"), int) and entry["iter"] <= it:
            keep.append(line if line.endswith("\n") else line + "\n")
    if keep != lines:
        def write(tmp: str) -> None:
            with open(tmp, "w") as f:
                f.writelines(keep)
        atomic_write(path, write)


def save_snapshot(run_dir: str, trainer, data_gen, noise_gen, it: int, seconds: float, setup: dict, prints: dict,
                  rank: int, world: int, keep: bool = False, ema: ActorEMA | None = None) -> None:
    """Gather every rank's noise-generator state; rank 0 writes actor.safetensors (the EMA's weights when there
    is one) and state.pt atomically (and, when keep, a copy actor_ITER.safetensors for choosing a snapshot
    later)."""
    noise_states = [noise_gen.get_state()]
    if world > 1:
        noise_states = [None] * world
        dist.all_gather_object(noise_states, noise_gen.get_state())
    if rank != 0:
        return
    actor, n_backbone = (ema.module if ema else trainer.actor), setup["backbone"]["params"]
    extra = dict(iterations=it, images=it * setup["batch"], seconds=seconds, ac_config=setup["cfg"],
                 num_steps_choices=setup["num_steps_choices"], mask_kinds=setup["mask_kinds"],
                 actor_params=n_params(actor), backbone_params=n_backbone,
                 param_ratio=n_params(actor) / n_backbone if n_backbone else None,  # None: a parameter-free oracle
                 critic=setup["critic"], world_size=world, fingerprints=prints,
                 **({"problem": setup["problem"]} if "problem" in setup else {}),  # e.g. trained in latent space
                 **({"objective": setup["objective"]} if "objective" in setup else {}),  # e.g. a denoising warm start
                 **({"init_actor": setup["init_actor"]} if setup.get("init_actor") else {}),  # its warm start's sha256
                 **({"ema_halflife": ema.halflife} if ema else {}),
                 **({"ema_rampup": ema.rampup} if ema and ema.rampup else {}))
    actor_path = os.path.join(run_dir, "actor.safetensors")
    save_module(actor, actor_path, "GuidanceModule", actor.config, extra)
    if keep:
        atomic_write(os.path.join(run_dir, f"actor_{it:06d}.safetensors"),
                     lambda tmp: shutil.copyfile(actor_path, tmp))
    state = dict(trainer={**trainer.state_dict(), "iteration": it}, data_gen=data_gen.get_state(),
                 noise_gens=noise_states, iter=it, seconds=seconds, setup=setup, fingerprints=prints,
                 **({"ema": ema.module.state_dict()} if ema else {}))
    atomic_write(os.path.join(run_dir, "state.pt"), lambda tmp: torch.save(state, tmp))
