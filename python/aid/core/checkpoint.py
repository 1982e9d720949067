"""This project's checkpoints and output files: safetensors files whose metadata holds the module's class
and constructor arguments as JSON, written atomically (a kill never leaves half a file), refused on load when
their weights are not finite; fingerprints of tensors and files; output folders checked before any compute."""
from __future__ import annotations

import hashlib
import json
import os

import torch
from safetensors.torch import load_file, safe_open, save_file

# The bundled models (python/aid/assets/, each with its card in README.md there).
ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")


def sha256_of(path: str) -> str:
    """The file's SHA-256 (hex): names a checkpoint in a run's or a benchmark's recorded setup."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tensors_fingerprint(tensors: dict) -> str:
    """SHA-256 (hex) of named tensors: each name, dtype, shape and bytes, in name order. Two modules of the same
    class and size with other weights (a whole data set, a mask pool) get other fingerprints."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()


def non_finite_weights(module: torch.nn.Module) -> list[str]:
    """The names of module's parameters and buffers that hold NaN or inf."""
    return [k for k, v in module.state_dict().items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


def writable_dir(path: str, what: str) -> None:
    """Refuse, before any compute, an output folder that cannot be written: path is a file, or lies under one,
    or its nearest existing folder is not writable. Creates nothing. what names the argument (e.g. "--out")."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{what}: {path} is a file, not a folder")
    parent = os.path.abspath(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"{what}: cannot create {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{what}: cannot write to {path}: {parent} is not writable")


def atomic_write(path: str, write) -> None:
    """write(tmp_path), then rename over path: readers see the old file or the new one."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_module(module: torch.nn.Module, path: str, kind: str, config: dict, extra: dict | None = None) -> None:
    """Weights of `module` plus {aid.kind, aid.config, aid.extra} metadata."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    meta = {"aid.kind": kind, "aid.config": json.dumps(config), "aid.extra": json.dumps(extra or {})}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def read_metadata(path: str) -> tuple[str, dict, dict]:
    """(kind, config, extra) of a checkpoint written by save_module."""
    try:
        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from e
    if "aid.kind" not in meta or "aid.config" not in meta:
        raise ValueError(f"{path}: a safetensors file without aid-ext metadata (aid.kind, aid.config)")
    return meta["aid.kind"], json.loads(meta["aid.config"]), json.loads(meta.get("aid.extra", "{}"))


def load_module(path: str, cls, kind: str, missing_hint: str = "") -> torch.nn.Module:
    """cls(**config) with the checkpoint's weights loaded strictly, frozen (eval, no grad)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such checkpoint: {path}{missing_hint}")
    found, config, _ = read_metadata(path)
    if found != kind:
        raise ValueError(f"{path} holds a {found!r}, not a {kind}")
    module = cls(**config)
    module.load_state_dict(load_file(path), strict=True)
    check_finite_weights(module, path)
    return module.eval().requires_grad_(False)


def check_finite_weights(module: torch.nn.Module, path: str) -> None:
    """A ValueError naming the file when a loaded module holds NaN or inf weights (a damaged file, or one saved
    from a diverged training run): such a module only ever produces NaN images."""
    bad = non_finite_weights(module)
    if bad:
        raise ValueError(f"{path}: {len(bad)} weight tensor(s) hold NaN or inf ({', '.join(bad[:3])}"
                         f"{', ...' if len(bad) > 3 else ''}): the file is damaged or was saved from a diverged "
                         "training run")
