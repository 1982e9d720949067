"""The torch.distributed collectives that aid's multi-process parts share (AID's trainer, aid.guidance.train; the
benchmark, aid.bench.run): this process's rank, numbers averaged over the ranks, flags true on any rank, and Python
objects (tensors inside them included) broadcast from one rank, gathered to one rank or to every rank. Joining the
process group is aid.guidance.distributed.init_distributed (it checks the device with aid.edm). In one process (no
process group) rank_and_world is (0, 1) and every collective is the identity: all_mean and any_rank return their
input, broadcast_object its argument, gather_objects and all_gather_objects a list of it."""
from __future__ import annotations

import torch
import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the initialised process group, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def comm_device() -> torch.device:
    """Where collectives' tensors live: the current GPU under NCCL, else the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def all_mean(values: list[float], world: int) -> list[float]:
    """The mean of each number over the ranks."""
    if world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=comm_device())
    dist.all_reduce(t)
    return (t / world).tolist()


def any_rank(flags: list[bool], world: int) -> list[bool]:
    """Each flag, true when it is true on any rank (so every rank takes the same branch)."""
    return [v > 0 for v in all_mean([float(f) for f in flags], world)]


def broadcast_object(obj, src: int = 0):
    """src's obj on every rank (any picklable object; obj is ignored on the other ranks)."""
    if rank_and_world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(obj, dst: int = 0) -> list | None:
    """Every rank's obj, in rank order, on dst; None on the other ranks."""
    rank, world = rank_and_world()
    if world == 1:
        return [obj]
    got = [None] * world if rank == dst else None
    dist.gather_object(obj, got, dst=dst)
    return got


def all_gather_objects(obj) -> list:
    """Every rank's obj, in rank order, on every rank."""
    world = rank_and_world()[1]
    if world == 1:
        return [obj]
    got = [None] * world
    dist.all_gather_object(got, obj)
    return got
