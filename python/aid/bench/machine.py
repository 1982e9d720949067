"""Where the benchmark's timings were taken: the machine of each process, recorded in results.json."""
from __future__ import annotations

import os
import platform

import torch


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
