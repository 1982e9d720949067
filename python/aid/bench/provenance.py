"""Where and with what a benchmark ran: the machine and the software versions, recorded with every run in
results.json (aid.bench.run)."""
from __future__ import annotations

import os
import platform
import subprocess

import numpy as np
import torch

import aid
import aid_ext


def machine(device: torch.device) -> dict:
    """Where the timings were taken."""
    cpu = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    d = dict(platform=platform.platform(), cpu=cpu, cpus=os.cpu_count(), cpus_usable=usable,
             torch_threads=torch.get_num_threads(), device=str(device))
    if device.type == "cuda":
        d["gpu"] = torch.cuda.get_device_name(device)
    return d


def git(*args, cwd: str):
    """git's output, or None where there is no git or it fails (e.g. cwd is in no checkout)."""
    try:
        r = subprocess.run(["git", "-C", cwd, *args], capture_output=True, text=True)
    except OSError:
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def versions() -> dict:
    """The software; git_commit and git_dirty are those of the checkout this code runs from, None unless this
    file is tracked by one (an installed copy, even in a virtual environment inside a checkout, has none)."""
    here = os.path.abspath(__file__)
    root = git("rev-parse", "--show-toplevel", cwd=os.path.dirname(here))
    tracked = root is not None and git("ls-files", "--error-unmatch", here, cwd=root) is not None
    commit = git("rev-parse", "HEAD", cwd=root) if tracked else None
    status = git("status", "--porcelain", "--untracked-files=no", cwd=root) if tracked else None
    return dict(python=platform.python_version(), torch=torch.__version__, numpy=np.__version__, aid=aid.__version__,
                aid_ext=aid_ext.__version__, aid_ext_build=aid_ext.build_info(), git_commit=commit,
                git_dirty=None if status is None else bool(status))


def portable(args: dict) -> dict:
    """A run's arguments as results.json records them: a path inside the working folder relative to it (e.g. the
    bundled backbone's, which the package gives as absolute), so that results can be committed and moved."""
    here = os.getcwd() + os.sep
    return {k: os.path.relpath(v) if isinstance(v, str) and v.startswith(here) else v for k, v in args.items()}
