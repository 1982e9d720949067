"""aid.bench across processes (aid.bench.shard; `torchrun -m aid bench`): two gloo processes give the
one-process results bit for bit (every number of every cell, the example outputs), rank 0 alone writes, and an
error on one rank stops every rank with the reason; a run killed in the middle of cells resumes on another number of
processes and still gives the one-process results; a chunk saved with other hyperparameters is run again."""
import json
import os
from functools import partial

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file
from torch.multiprocessing.spawn import ProcessExitedException, ProcessRaisedException

from aid.bench import run as sq
from aid.bench import shard

TIMING = {"seconds_total", "seconds_per_image", "processes", "run"}  # the only keys sharding may change




def grid(backbone: str) -> list[str]:
    """12 cells (2 mask kinds × paste, DDNM and ΠGDM (a VJP per step) × 2 costs) of 6 images, each cut into 3
    chunks of 2 images, so that one cell spreads over both ranks; FD_fmnist from the 6 images."""
    return ["--quick", "--backbone", backbone, "--images", "6", "--batch", "2", "--fd-min-images", "6",
            "--masks", "center_box", "pixels70", "--methods", "paste", "ddnm", "pigdm", "--nfe", "3", "5",
            "--examples", "2"]


def one_thread(fn, *args):
    """fn(*args) with one torch thread, as each rank has (the numbers here do not depend on it; kept equal anyway)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(fmnist, backbone, tmp_path_factory):
    """The grid in this process, alone."""
    out = str(tmp_path_factory.mktemp("one"))
    one_thread(sq.main, grid(backbone) + ["--out", out])
    return out


def results(out: str) -> dict:
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)


def numbers(res: dict) -> dict:
    return {k: {f: v for f, v in c.items() if f not in TIMING} for k, c in res["cells"].items()}


def parts_in(out: str) -> list[str]:
    root = os.path.join(out, shard.PARTS)
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def _worker(rank: int, world: int, store: str, argvs: list[list[str]], die: tuple[int, int] | None):
    """Run the benchmark on each argv in turn, as one rank; a SystemExit's message goes to OUT/exit_rankR.txt (the
    test's own file). die = (rank, k): that rank exits (as if killed) at its k-th sampler call (0: the warm-up)."""
    torch.set_num_threads(1)
    # a file rendezvous: no port to race for, and no TCP store thread to outlive the group
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        if die is not None and rank == die[0]:
            calls, run_cell = iter(range(10**6)), sq.run_cell

            def dying(*args, **kwargs):
                if next(calls) == die[1]:
                    os._exit(17)
                return run_cell(*args, **kwargs)
            sq.run_cell = dying
        for argv in argvs:
            try:
                sq.main(argv)
            except SystemExit as e:
                with open(os.path.join(argv[argv.index("--out") + 1], f"exit_rank{rank}.txt"), "w") as f:
                    f.write(str(e.code))
        dist.barrier()  # tear down together: a rank whose gloo peer hangs up first can abort
    finally:
        dist.destroy_process_group()


def spawn_two(tmp_path, argvs, die=None):
    """Run _worker on 2 ranks. On a 2-core CPU under load gloo sometimes aborts a rank at start-up (SIGABRT; see
    tests/guidance/test_train_aid.py): such a crash, and only such, is retried (a resumable folder: as it is)."""
    for attempt in range(3):
        try:
            mp.spawn(_worker, args=(2, str(tmp_path / f"store{attempt}"), argvs, die), nprocs=2, join=True)
            return
        except ProcessExitedException as e:
            if e.signal_name != "SIGABRT" or attempt == 2:
                raise


def test_two_gloo_processes_equal_one_process_bit_for_bit(reference, backbone, tmp_path, capfd):
    out = str(tmp_path / "two")
    spawn_two(tmp_path, [grid(backbone) + ["--out", out], grid(backbone) + ["--out", out]])
    one, two = results(reference), results(out)
    assert len(one["cells"]) == 12 and numbers(two) == numbers(one)  # PSNR, SSIM, FD, KD, seam, ... of every cell
    assert all(isinstance(c["fd_fmnist"], float) for c in two["cells"].values())
    assert {tuple(c["processes"]) for c in two["cells"].values()} == {(2,)}
    assert {tuple(c["processes"]) for c in one["cells"].values()} == {(1,)}
    assert [r["processes"] for r in two["runs"]] == [2] and two["runs"][0]["wall_seconds"] > 0
    a, b = (load_file(os.path.join(f, "examples.safetensors")) for f in (reference, out))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    md = open(os.path.join(out, "results.md")).read()
    assert "× 2 processes" in md and "| 2 | 6 |" in md  # the run, and each cell's processes and images
    assert "36 chunks of up to 2 images to run on 2 processes" in capfd.readouterr().out
    assert parts_in(out) == []
    # the second call (no --resume): refused on rank 0, and every rank stops with rank 0's reason
    for rank in (0, 1):
        assert "exists; pass --resume" in open(os.path.join(out, f"exit_rank{rank}.txt")).read()


def test_a_killed_run_resumes_on_another_number_of_processes(reference, backbone, tmp_path, monkeypatch):
    """1 process, killed after 7 of the 36 chunks (the costliest cells go first: 2 cells done, 1 chunk of the
    third kept); resumed on 2 processes, killed after 2 rounds (4 more chunks); resumed on 1 process to the end."""
    out = str(tmp_path / "out")
    argv = grid(backbone) + ["--out", out]
    calls, run_cell = iter(range(10**6)), sq.run_cell

    def interrupted(*args, **kwargs):
        if next(calls) == 8:  # the warm-up, then 7 chunks
            raise KeyboardInterrupt
        return run_cell(*args, **kwargs)
    monkeypatch.setattr(sq, "run_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        one_thread(sq.main, argv)
    monkeypatch.setattr(sq, "run_cell", run_cell)
    assert len(results(out)["cells"]) == 2 and len(parts_in(out)) == 1
    with pytest.raises((ProcessExitedException, ProcessRaisedException)):
        spawn_two(tmp_path, [argv + ["--resume"]], die=(1, 3))  # rank 1: the warm-up, 2 chunks, then killed
    assert len(results(out)["cells"]) == 3 and len(parts_in(out)) == 2
    one_thread(sq.main, argv + ["--resume"])
    res, ref = results(out), results(reference)
    assert numbers(res) == numbers(ref) and parts_in(out) == []
    assert [r["processes"] for r in res["runs"]] == [1, 2, 1]
    assert sorted(tuple(c["processes"]) for c in res["cells"].values()).count((1, 2)) == 2  # the cells cut by kills
    a, b = (load_file(os.path.join(f, "examples.safetensors")) for f in (reference, out))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "| 1+2 |" in open(os.path.join(out, "results.md")).read()


def test_a_chunk_made_with_other_hyperparameters_is_run_again(fmnist, backbone, tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "out")
    argv = ["--quick", "--backbone", backbone, "--images", "4", "--batch", "2", "--fd-min-images", "4", "--masks",
            "center_box", "--methods", "ddnm", "--nfe", "2", "--out", out]
    calls, run_cell = iter(range(10**6)), sq.run_cell

    def interrupted(*args, **kwargs):
        if next(calls) == 2:  # the warm-up, then 1 of the 2 chunks
            raise KeyboardInterrupt
        return run_cell(*args, **kwargs)
    monkeypatch.setattr(sq, "run_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sq.main(argv)
    assert parts_in(out) == [os.path.join("center_box", "ddnm", "2", "0000000-0000002.safetensors")]
    monkeypatch.setattr(sq, "run_cell", run_cell)
    monkeypatch.setitem(sq.METHODS, "ddnm", partial(sq.METHODS["ddnm"], eta=0.5))
    sq.main(argv + ["--resume"])
    assert "2 chunks of up to 2 images to run on 1 process\n" in capsys.readouterr().out  # none kept
    assert results(out)["cells"]["center_box/ddnm/2"]["hyperparameters"] == {"eta": 0.5} and parts_in(out) == []


def test_chunks_follow_the_batch_grid_and_parts_are_dropped_with_their_folders(tmp_path):
    assert shard.chunks(5, 2) == [(0, 2), (2, 4), (4, 5)] and shard.chunks(4, 8) == [(0, 4)]
    x = torch.arange(6.0).view(3, 2)
    shard.save_part(str(tmp_path), "a/b/3", 0, 3, x, {"seconds": 1.5})
    shard.save_part(str(tmp_path), "a/c/3", 0, 3, x, {"seconds": 2.5})
    assert shard.part_meta(str(tmp_path), "a/b/3", 0, 3) == {"seconds": 1.5}
    assert shard.part_meta(str(tmp_path), "a/b/3", 3, 6) is None
    got, metas = shard.load_parts(str(tmp_path), "a/b/3", [(0, 3)])
    assert torch.equal(got, x) and metas == [{"seconds": 1.5}]
    shard.drop_parts(str(tmp_path), "a/b/3")
    assert os.listdir(tmp_path / "parts" / "a") == ["c"]
    shard.drop_parts(str(tmp_path), "a/c/3")
    assert not os.path.exists(tmp_path / "parts")


def test_in_one_process_a_failure_is_raised_as_it_is():
    shard.agree(None)
    with pytest.raises(KeyError, match="boom"):
        shard.agree(KeyError("boom"))
    seen = []
    shard.run_rounds([1, 2, 3], lambda i: i * 10, lambda items, got: seen.append((items, got)))
    assert seen == [([1], [10]), ([2], [20]), ([3], [30])]
