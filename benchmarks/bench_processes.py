"""Wall clock of one benchmark command on 1 process and on N processes (aid.bench.shard), measured in one run.

    python benchmarks/bench_processes.py [--processes 2] [--json benchmarks/results/bench_processes.json] [-- ARGS]

ARGS are the `aid bench` flags after --out (default: --quick, the README's bench command). Each setting runs the
command into a fresh folder, one after the other:

- `OMP_NUM_THREADS=1 python -m aid bench --out DIR ARGS`: one process, one thread;
- `torchrun --standalone --nproc_per_node=N -m aid bench ...`: N gloo processes, one thread each (torchrun's
  default OMP_NUM_THREADS=1);
- `python -m aid bench ...`: one process with torch's default threads (one per usable core).

Reported per setting: the wall clock of the whole command (process start, imports and the reports included) and of
the benchmark itself (results.json's runs[-1].wall_seconds), the sum of the cells' sampler seconds, and whether
every cell's numbers (all but the timings) equal those of 1 process with 1 thread bit for bit (else which fields
differ). The load average before and after is recorded: on a shared machine (see `uptime`) the absolute times
carry over least.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

TIMING = {"seconds_total", "seconds_per_image", "processes", "run"}


def run(name: str, command: list[str], env: dict, out: str, shown: str) -> dict:
    """Run command (shown: how it is written in the report, without this machine's paths) into out; its numbers."""
    print(f"== {name}: {shown}", flush=True)
    t = time.perf_counter()
    p = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"{name} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    with open(os.path.join(out, "results.json")) as f:
        res = json.load(f)
    cells = res["cells"]
    return dict(setting=name, command=shown, wall_seconds=wall, benchmark_seconds=res["runs"][-1]["wall_seconds"],
                sampler_seconds=sum(c["seconds_total"] for c in cells.values()), cells=len(cells),
                processes=res["runs"][-1]["processes"], torch_threads=res["runs"][-1]["machine"]["torch_threads"],
                numbers={k: {f: v for f, v in c.items() if f not in TIMING} for k, c in cells.items()})


def cpu_model() -> str:
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    return platform.processor()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--processes", type=int, default=2, help="processes of the sharded setting [2]")
    p.add_argument("--json", default="benchmarks/results/bench_processes.json", help="where the numbers go")
    p.add_argument("args", nargs="*", help="`aid bench` flags after --out [--quick]")
    a = p.parse_args(argv)
    args = a.args or ["--quick"]
    base = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        n = f"--nproc_per_node={a.processes}"
        settings = [  # (name, command before --out, environment, the command as the report shows it)
            ("1 process, 1 thread", [sys.executable, "-m", "aid", "bench"], dict(base, OMP_NUM_THREADS="1"),
             "OMP_NUM_THREADS=1 python -m aid bench"),
            (f"{a.processes} processes, 1 thread each",
             [sys.executable, "-m", "torch.distributed.run", "--standalone", n, "-m", "aid", "bench"], base,
             f"torchrun --standalone {n} -m aid bench"),
            ("1 process, default threads", [sys.executable, "-m", "aid", "bench"], base, "python -m aid bench")]
        for i, (name, command, env, shown) in enumerate(settings):
            out = os.path.join(tmp, str(i))
            rows.append(run(name, command + ["--out", out] + args, env, out, " ".join([shown, "--out DIR"] + args)))
    load_after = os.getloadavg()
    first = rows[0]["numbers"]
    for r in rows:  # every number of every cell but the timings, against 1 process with 1 thread
        got = r.pop("numbers")
        r["numbers_equal_first"] = got == first
        r["differing"] = sorted({f for k, c in first.items() for f, v in c.items() if got.get(k, {}).get(f) != v})
    report = dict(args=args, cpus_usable=len(os.sched_getaffinity(0)), cpu=cpu_model(),
                  loadavg_before=load_before, loadavg_after=load_after, date=time.strftime("%Y-%m-%d %H:%M:%S"),
                  rows=rows)
    print(f"\n`aid bench --out DIR {' '.join(args)}` on {report['cpus_usable']} usable cores; load average "
          f"before {load_before[0]:.2f}, after {load_after[0]:.2f}\n")
    print("| setting | command wall clock (s) | benchmark wall clock (s) | sampler s (sum) | speed-up | "
          "numbers = 1 process, 1 thread |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['setting']} | {r['wall_seconds']:.1f} | {r['benchmark_seconds']:.1f} | "
              f"{r['sampler_seconds']:.1f} | {rows[0]['wall_seconds'] / r['wall_seconds']:.2f} | "
              f"{'yes' if r['numbers_equal_first'] else 'no: ' + ', '.join(r['differing'])} |")
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"\nwrote {a.json}")


if __name__ == "__main__":
    main()
