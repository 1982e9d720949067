"""Every inpainting method by name, ready for a backbone: the baselines of aid.baselines, and the amortized
methods (DEFT, AID) with their trained modules loaded. Used by `aid inpaint`, the benchmark and the tuning."""
from __future__ import annotations

from functools import partial

from aid.baselines import METHODS
from aid.baselines.deft import deft, h_transform
from aid.core.checkpoint import read_metadata
from aid.core.common import device_of
from aid.guidance.actor_critic import ACConfig
from aid.guidance.sample import load_actor, sample_aid


def load_sampler(method: str, net, module: str | None = None):
    """method's sampler, fn(net, y, mask, seeds, num_steps, **hyperparameters) -> (x, report): a baseline of
    aid.baselines, or DEFT or AID with its trained module (module: h.safetensors from train_deft, or
    actor.safetensors from aid.guidance.train) loaded once onto net's device. AID's has no defaults in its
    signature: its num_steps and solver should be those of training (training_settings)."""
    if method == "deft":
        return partial(deft, h=h_transform(module, net))
    if method != "aid":
        return METHODS[method]
    actor = load_actor(module, device_of(net))

    def aid(net, y, mask, seeds, num_steps, **kwargs):
        return sample_aid(net, actor, y, mask, seeds, num_steps=num_steps, **kwargs)
    return aid


def training_settings(path: str) -> tuple[int, str]:
    """(K, solver) of an actor.safetensors' training, from its metadata (ac_config). One trained over several
    K (num_steps_choices) gives ACConfig.num_steps (9) if it is among them, else the largest. A module
    without that metadata gives ACConfig's defaults."""
    _, _, extra = read_metadata(path)
    cfg, choices = extra.get("ac_config") or {}, extra.get("num_steps_choices")
    if choices:
        steps = ACConfig.num_steps if ACConfig.num_steps in choices else max(choices)
    else:
        steps = cfg.get("num_steps", ACConfig.num_steps)
    return int(steps), cfg.get("solver", ACConfig.solver)
