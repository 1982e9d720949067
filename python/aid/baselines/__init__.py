"""Baseline inpainting samplers on a frozen EDM backbone. Every one has the signature
`method(net, y, mask, seeds, num_steps=..., **hyperparameters) -> (x [B, C, H, W], report)`
with report = {"nfe": backbone forwards, "vjp": backward passes through the backbone, ...}."""
import inspect

from aid.baselines.daps import daps
from aid.baselines.ddnm import ddnm
from aid.baselines.deft import deft, train_deft
from aid.baselines.diffpir import diffpir
from aid.baselines.ding import ding
from aid.baselines.guided import dps, pigdm
from aid.baselines.paste import paste
from aid.baselines.repaint import repaint, repaint_nfe, repaint_schedule
from aid.baselines.replacement import replacement

METHODS = {"paste": paste, "replacement": replacement, "repaint": repaint, "ddnm": ddnm, "diffpir": diffpir,
           "dps": dps, "pigdm": pigdm, "deft": deft, "ding": ding, "daps": daps}


def defaults(fn) -> dict:
    """The keyword defaults of a sampler's signature: its published or tuned settings."""
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


__all__ = ["METHODS", "daps", "ddnm", "defaults", "deft", "diffpir", "ding", "dps", "paste", "pigdm", "repaint",
           "repaint_nfe", "repaint_schedule", "replacement", "train_deft"]
