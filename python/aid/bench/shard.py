"""How aid.bench.run spreads the benchmark's work over processes (`torchrun ... -m aid bench`; the collectives are
aid.core.distributed's) and keeps the work of the cells in progress.

- **Chunks.** A cell's n images are cut on the grid of --batch: [0, b), [b, 2b), ..., the very batches one process
  runs, each with image i's seed i and mask i. So the outputs, and every number computed from them, do not depend
  on how many processes ran (nor on which ran what).
- **Rounds.** The chunks of every cell to run, the costliest cells first (so that a round's chunks cost about the
  same), are dealt to the ranks W at a time: in round r rank k runs chunk r·W + k. After each round rank 0 gathers
  the round's outputs, saves each chunk as OUT/parts/MASK/METHOD/STEPS/START-END.safetensors (atomically; its
  sampler report, seconds, hyperparameters and the number of processes in the metadata), and measures every cell
  whose chunks are all there; then the ranks agree whether any of them failed, so an error stops every rank.
- **Resume.** A chunk on disk is never run again: a killed run, resumed with --resume on any number of processes
  (any rank 0 that sees OUT), runs only the missing chunks. A cell's parts are deleted once its record is in
  results.json. Parts made with other hyperparameters, or cut on another --batch grid, are run again.
"""
from __future__ import annotations

import json
import os
import shutil
import traceback

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from aid.bench.results import BenchmarkError
from aid.core.checkpoint import atomic_write
from aid.core.distributed import all_gather_objects, gather_objects, rank_and_world

PARTS = "parts"  # the folder of OUT that holds the chunks of the cells in progress


def chunks(n: int, batch: int) -> list[tuple[int, int]]:
    """The image ranges [start, end) of a cell of n images: one per sampler call of one process."""
    return [(a, min(a + batch, n)) for a in range(0, n, batch)]


def part_path(out: str, key: str, start: int, end: int) -> str:
    return os.path.join(out, PARTS, *key.split("/"), f"{start:07d}-{end:07d}.safetensors")


def save_part(out: str, key: str, start: int, end: int, x: torch.Tensor, meta: dict) -> None:
    """The outputs of images [start, end) of cell key, with meta (JSON) as the file's metadata."""
    atomic_write(part_path(out, key, start, end),
                 lambda tmp: save_file({"x": x.contiguous()}, tmp, metadata={"meta": json.dumps(meta)}))


def part_meta(out: str, key: str, start: int, end: int) -> dict | None:
    """The metadata of a saved chunk, or None where there is none (or it cannot be read)."""
    path = part_path(out, key, start, end)
    if not os.path.exists(path):
        return None
    try:
        with safe_open(path, "pt") as f:
            return json.loads(f.metadata()["meta"])
    except Exception:  # a file cut short outside atomic_write: run the chunk again
        return None


def load_parts(out: str, key: str, ranges: list[tuple[int, int]]) -> tuple[torch.Tensor, list[dict]]:
    """(the outputs of the ranges, concatenated in order; each range's metadata)."""
    xs, metas = [], []
    for a, b in ranges:
        with safe_open(part_path(out, key, a, b), "pt") as f:
            xs.append(f.get_tensor("x"))
            metas.append(json.loads(f.metadata()["meta"]))
    return torch.cat(xs), metas


def drop_parts(out: str, key: str | None = None) -> None:
    """Delete the saved chunks of cell key (and the folders left empty), or with key None all of OUT/parts."""
    root = os.path.join(out, PARTS)
    folder = root if key is None else os.path.join(root, *key.split("/"))
    shutil.rmtree(folder, ignore_errors=True)
    while folder != root and os.path.isdir(os.path.dirname(folder)):
        folder = os.path.dirname(folder)
        try:
            os.rmdir(folder)  # only if empty
        except OSError:
            break


def agree(error: Exception | None) -> None:
    """Raise on every rank when any rank failed (collective: every rank calls it): a failed rank raises its own
    exception; the others a BenchmarkError with the message of the first failed rank's BenchmarkError, or a
    RuntimeError naming that rank and its error. In one process: raise error, if any."""
    if rank_and_world()[1] == 1:
        if error is not None:
            raise error
        return
    what = None if error is None else (isinstance(error, BenchmarkError), f"{type(error).__name__}: {error}",
                                       str(error), "".join(traceback.format_exception(error)))
    failed = [(k, w) for k, w in enumerate(all_gather_objects(what)) if w is not None]
    if error is not None:
        raise error
    if failed:
        k, (is_benchmark_error, line, message, trace) = failed[0]
        raise BenchmarkError(message) if is_benchmark_error else RuntimeError(f"rank {k} failed: {line}\n{trace}")


def run_rounds(items: list, work, collect, progress=None) -> None:
    """Run every item, dealt to the ranks in rounds of W (round r: rank k runs items[r·W + k]): work(item) on the
    rank that runs it, then on rank 0 (only) collect(the round's items, their work() results, None for a rank that
    failed) and progress(the round's items), if given; every rank stops with an error when any failed (agree)."""
    rank, world = rank_and_world()
    for r in range(0, len(items), world):
        this, error, result = items[r:r + world], None, None
        if rank < len(this):
            try:
                result = work(this[rank])
            except Exception as e:
                error = e
        got = gather_objects(result)
        if rank == 0 and error is None:
            try:
                collect(this, got)
                if progress is not None:
                    progress(this)
            except Exception as e:
                error = e
        agree(error)
