"""Starting an AID run from trained weights (aid.guidance.train's init_actor, init_critic, actor_trainable):
the actor from an actor.safetensors, the critic from another run's state.pt, and a fine-tune of part of the
actor."""
from __future__ import annotations

import torch
from safetensors.torch import load_file

from aid.core.checkpoint import read_metadata
from aid.guidance.networks import Critic, GuidanceModule
from aid.guidance.rundir import described


def warm_start(actor: GuidanceModule, path: str) -> None:
    """Load an actor.safetensors' weights into actor (same configuration required, except that a step-aware
    actor may start from one without the step input: its step embedding starts at zero, so training begins
    from exactly the loaded field; and the η of the steps it steers may differ: u corrects the denoiser the same
    way in every step, aid.edm.sampler.control_gain)."""
    _, config, _ = read_metadata(path)
    adds_step = bool(actor.config.get("step_aware")) and not config.get("step_aware")
    if {**config, **({"step_aware": True} if adds_step else {}), "eta": 0} != {**actor.config, "eta": 0}:
        raise ValueError(f"train_aid: init_actor {path} is another guidance module ({described(config, actor.config)})")
    state = load_file(path, device=str(next(actor.parameters()).device))
    missing, _ = actor.load_state_dict(state, strict=not adds_step)
    assert all(k.startswith("step_embed.") for k in missing), missing  # the configs matched


def warm_start_critic(critic: Critic, path: str) -> None:
    """Load the critic of another run's state.pt into critic (same configuration required). A fresh critic's
    ∇V̂ steers a warm-started actor off its optimum before it has learned the value (measured: a fine-tune of
    the bundled module rose from cost 175 to 220 in its first 230 actor iterations with a fresh critic)."""
    s = torch.load(path, map_location="cpu", weights_only=True)
    config = s["setup"]["critic"]
    if config != critic.config:
        raise ValueError(f"train_aid: init_critic {path} holds another critic ({described(config, critic.config)})")
    critic.load_state_dict(s["trainer"]["critic"], strict=True)


def freeze_all_but(actor: GuidanceModule, prefix: str) -> None:
    """requires_grad only for the actor's parameters under the dotted prefix (whole name parts: "body.down.1" is
    not "body.down.10"); the trainer then updates just those."""
    prefix = prefix.rstrip(".")
    names = [n for n, _ in actor.named_parameters() if n == prefix or n.startswith(prefix + ".")]
    if not names:
        raise ValueError(f"train_aid: actor_trainable {prefix!r} names no parameter of the guidance module "
                         f"(it has {', '.join(sorted({n.split('.')[0] for n, _ in actor.named_parameters()}))})")
    for n, p in actor.named_parameters():
        p.requires_grad_(n in names)
