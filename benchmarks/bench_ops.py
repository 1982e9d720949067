"""Op-level benchmark: each fused aid_ext op against the eager reference, torch.compile of
the reference, and a plain copy of the same number of bytes, all timed in one run.

    python benchmarks/bench_ops.py                 # all ops, the three standard sizes, CPU
    python benchmarks/bench_ops.py --device cuda --dtype bfloat16 --json out.json
    python benchmarks/bench_ops.py --quick         # smoke run (seconds)

Effective bandwidth counts every image-sized tensor read or written once (the mask at its
own size); "% copy" is the op's bandwidth over that of `dst.copy_(src)` moving the same bytes.
"""
from __future__ import annotations

import argparse
import json

import torch
import torch.utils.benchmark as tb

import aid_ext
from aid_ext import reference
from aid_ext.testing import OPS, inputs

SIZES = [(64, 3, 64, 64), (8, 4, 64, 64), (256, 1, 32, 32)]


def _bytes_moved(args, kwargs, out) -> int:
    tensors = [t for t in list(args) + list(kwargs.values()) if isinstance(t, torch.Tensor) and t.dim() == 4]
    outs = out if isinstance(out, tuple) else (out,)
    return sum(t.numel() * t.element_size() for t in tensors + list(outs))


def _time(fn, min_run_time: float) -> float:
    """Median seconds per call (torch.utils.benchmark handles warm-up and CUDA sync)."""
    fn()
    return tb.Timer("fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median


def bench(name, shape, dtype, device, min_run_time, compile_reference=True) -> dict:
    args, kwargs = inputs(name, shape, dtype, device)
    fused = lambda: getattr(aid_ext.ops, name)(*args, **kwargs)  # noqa: E731
    eager = lambda: getattr(reference, name)(*args, **kwargs)  # noqa: E731
    nbytes = _bytes_moved(args, kwargs, fused())
    src = torch.empty(nbytes // 2, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    row = {"op": name, "shape": list(shape), "dtype": str(dtype).replace("torch.", ""), "device": device,
           "bytes": nbytes, "fused_s": _time(fused, min_run_time), "eager_s": _time(eager, min_run_time),
           "copy_s": _time(lambda: dst.copy_(src), min_run_time)}
    if compile_reference:
        compiled = torch.compile(getattr(reference, name), dynamic=False)
        row["compiled_s"] = _time(lambda: compiled(*args, **kwargs), min_run_time)
    row["fused_GBps"] = nbytes / row["fused_s"] / 1e9
    row["copy_GBps"] = nbytes / row["copy_s"] / 1e9
    return row


def table(rows) -> str:
    head = ("| op | shape | fused µs | eager µs | compiled µs | eager/fused | compiled/fused | fused GB/s "
            "| copy GB/s | % copy |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        comp = r.get("compiled_s")
        lines.append(
            f"| {r['op']} | {'×'.join(map(str, r['shape']))} | {r['fused_s'] * 1e6:.1f} | {r['eager_s'] * 1e6:.1f} | "
            f"{comp * 1e6:.1f} | " if comp else
            f"| {r['op']} | {'×'.join(map(str, r['shape']))} | {r['fused_s'] * 1e6:.1f} "
            f"| {r['eager_s'] * 1e6:.1f} | – | ")
        lines[-1] += (f"{r['eager_s'] / r['fused_s']:.2f} | " + (f"{comp / r['fused_s']:.2f} | " if comp else "– | ") +
                      f"{r['fused_GBps']:.1f} | {r['copy_GBps']:.1f} | {100 * r['copy_s'] / r['fused_s']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64", "float16", "bfloat16"])
    p.add_argument("--ops", nargs="*", default=OPS, choices=OPS)
    p.add_argument("--min-run-time", type=float, default=1.0, help="seconds of timing per measurement")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile(reference)")
    p.add_argument("--quick", action="store_true", help="smallest size, short timings: a smoke run")
    p.add_argument("--json", help="write the rows to this file")
    a = p.parse_args(argv)
    sizes = [SIZES[1]] if a.quick else SIZES
    mrt = 0.05 if a.quick else a.min_run_time
    dtype = getattr(torch, a.dtype)
    print(f"# aid_ext {aid_ext.__version__}, torch {torch.__version__}, device {a.device}"
          f"{' (' + torch.cuda.get_device_name() + ')' if a.device == 'cuda' else ''}, "
          f"{torch.get_num_threads()} threads, dtype {a.dtype}", flush=True)
    rows = []
    for name in a.ops:
        for shape in sizes:
            rows.append(bench(name, shape, dtype, a.device, mrt, not a.no_compile))
            print(f"  {name} {shape}: fused/eager {rows[-1]['eager_s'] / rows[-1]['fused_s']:.2f}x", flush=True)
    print(table(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"torch": torch.__version__, "build": aid_ext.build_info(), "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
