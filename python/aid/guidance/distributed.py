"""The multi-process side of aid.guidance.train (torch.distributed; NCCL on GPUs, gloo on CPU): joining the
process group torchrun describes, this process's rank, and the collectives a training run needs: gradients
averaged before every optimizer step, numbers averaged over the ranks, and decisions that every rank takes
alike. In one process (no process group) rank_and_world is (0, 1) and all_mean and any_rank return their input."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the initialised process group, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


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


def all_mean(values: list[float], world: int) -> list[float]:
    """The mean of each number over the ranks."""
    if world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return (t / world).tolist()


def any_rank(flags: list[bool], world: int) -> list[bool]:
    """Each flag, true when it is true on any rank (so every rank takes the same branch)."""
    return [v > 0 for v in all_mean([float(f) for f in flags], world)]


def _comm_device() -> torch.device:
    """Where collectives' tensors live: the current GPU under NCCL, else the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def init_distributed(device: str | None) -> torch.device:
    """Join the process group torchrun describes (WORLD_SIZE > 1): NCCL on the local GPU, gloo on
    the CPU. Returns this process's device (the local GPU, else the CPU, unless one is named)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device
