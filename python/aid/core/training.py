"""The loop around an offline trainer's iterations, shared by aid.edm.train and aid.baselines.deft:
a progress bar, a JSONL log, snapshots, and a wall-clock budget per call. (aid.guidance.train has its
own: its stop and snapshot decisions are agreed across torchrun ranks.)"""
from __future__ import annotations

import json
import math
import time
from typing import Callable

import torch

SNAPSHOT_SECONDS = 600  # also snapshot when the last one is older than this: a kill loses at most 10 minutes


def run_iterations(step: Callable[[int], torch.Tensor], snapshot: Callable[[int, float], None], *, it: int,
                   iters: int, seconds: float, log_path: str, desc: str, progress=True, max_seconds=None,
                   snapshot_every=500, log_every=50,
                   on_divergence: str = "lower the learning rate (--lr) and run again") -> int:
    """Call loss = step(it) (it = iterations done before this one) until `iters` iterations in total
    or max_seconds of this call. `seconds` is the training time of the iterations done before.
    Logs {iter, loss, seconds} every log_every iterations and at the last one; calls
    snapshot(it, seconds) every snapshot_every iterations, when the last snapshot is older than
    SNAPSHOT_SECONDS, and at the end. Returns the iteration count reached. A loss that is not finite
    stops the run with a FloatingPointError before anything of that iteration is written (the last snapshot
    stays), saying what to do (on_divergence); snapshot itself should refuse non-finite weights."""
    if snapshot_every < 1 or log_every < 1:
        raise ValueError(f"{desc}: snapshot_every and log_every must be >= 1, got {snapshot_every}, {log_every}")
    t_start = t_last = time.time()
    saved = it

    def elapsed() -> float:
        return round(seconds + time.time() - t_start, 1)

    bar = None
    if progress:
        from tqdm.auto import tqdm  # optional dependency, only for the progress bar
        bar = tqdm(total=iters, initial=it, desc=desc, dynamic_ncols=True)
    try:
        with open(log_path, "a") as log:
            while it < iters and (max_seconds is None or time.time() - t_start < max_seconds):
                loss = step(it).item()
                if not math.isfinite(loss):
                    raise FloatingPointError(f"{desc}: the loss is {loss} at iteration {it + 1}: training diverged; "
                                             f"nothing of it was saved, the last snapshot (iteration {saved}) is "
                                             f"kept; {on_divergence}")
                it += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}")
                if it % log_every == 0 or it == iters:
                    log.write(json.dumps({"iter": it, "loss": round(loss, 5), "seconds": elapsed()}) + "\n")
                    log.flush()
                if it % snapshot_every == 0 or time.time() - t_last > SNAPSHOT_SECONDS:
                    snapshot(it, elapsed())
                    saved, t_last = it, time.time()
        snapshot(it, elapsed())
    finally:
        if bar is not None:
            bar.close()  # before any error is printed (a bar closed later is drawn again below it)
    return it
