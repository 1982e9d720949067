"""The multi-process side of aid.guidance.train (torch.distributed; NCCL on GPUs, gloo on CPU): joining the
process group torchrun describes (init_distributed, also used by the benchmark, aid.bench.run) and gradients
averaged before every optimizer step. The collectives that do not depend on training (this process's rank, numbers
averaged over the ranks, decisions that every rank takes alike, objects broadcast or gathered) are in
aid.core.distributed."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["average_gradients", "init_distributed"]


def average_gradients(opt: torch.optim.Optimizer, world: int) -> None:
    """Before every step of opt, replace each gradient by its mean over the ranks (one all-reduce)."""
    def hook(optimizer, args, kwargs):
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= world
        for g, v in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(v.view_as(g))
    opt.register_step_pre_hook(hook)


def init_distributed(device: str | None) -> torch.device:
    """Join the process group torchrun describes (WORLD_SIZE > 1): NCCL on the local GPU, gloo on
    the CPU. Returns this process's device (the local GPU, else the CPU, unless one is named; a named one this
    build or machine cannot run is a ValueError saying why: aid.edm.load.check_device)."""
    from aid.edm.load import check_device  # refuses a device this build or machine cannot run, naming --device
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = check_device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device
