"""Loading EDM backbones: official NVlabs/edm `.pkl` snapshots (read safely, see
pickle_loader) and this project's safetensors checkpoints (config in the metadata).
Every loaded backbone is returned frozen: eval mode, requires_grad False."""
from __future__ import annotations

import os

import torch

import aid_ext
from aid.core.checkpoint import ASSETS, check_finite_weights, load_module, save_module, writable_dir
from aid.edm.networks import EDMPrecond
from aid.edm.pickle_loader import load_edm_pickle

# The bundled default backbone (trained by aid.edm.train on Fashion-MNIST 32×32; card in assets/README.md).
DEFAULT_BACKBONE = os.path.join(ASSETS, "edm_fmnist32.safetensors")


def freeze(net: torch.nn.Module) -> torch.nn.Module:
    return net.eval().requires_grad_(False)


def check_device(name) -> torch.device:
    """torch.device(name), refused (ValueError naming --device) when this build or machine cannot run it: CUDA on a
    CPU-only aid_ext build or without a visible GPU, or a device type other than cpu and cuda."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"--device {name!r}: {e}") from None
    if device.type == "cuda":
        info = aid_ext.build_info()
        if not info["with_cuda"]:
            raise ValueError(f"--device {name}: this aid_ext build is CPU-only "
                             f"(built for torch {info['torch_version']}); "
                             "rebuild with CUDA (README, 'Building with CUDA') or use --device cpu")
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: torch sees no GPU on this machine; use --device cpu")
    elif device.type != "cpu":
        raise ValueError(f"--device {name}: only cpu and cuda are supported")
    return device


def load(path: str = DEFAULT_BACKBONE, device="cpu") -> EDMPrecond:
    """A frozen EDMPrecond from an official EDM .pkl or a .safetensors checkpoint written by aid
    (by default the bundled Fashion-MNIST backbone), on device (check_device). Weights that are not finite
    are refused, naming the file."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"aid.edm.load: no such file: {path}")
    device = check_device(device)
    if path.endswith(".pkl"):
        net = load_edm_pickle(path)
        check_finite_weights(net, path)
        return freeze(net).to(device)
    if not path.endswith(".safetensors"):
        raise ValueError(f"aid.edm.load: {path}: expected an official EDM .pkl or a .safetensors checkpoint")
    return load_module(path, EDMPrecond, "EDMPrecond").to(device)


def convert(pkl_path: str, out_path: str) -> None:
    """Official EDM .pkl → this project's safetensors (read once safely, never unpickled again), written
    atomically. out_path must end in .safetensors and must not be pkl_path (the source is never overwritten)."""
    if os.path.abspath(out_path) == os.path.abspath(pkl_path) or (
            os.path.exists(out_path) and os.path.samefile(out_path, pkl_path)):
        raise ValueError(f"OUT: {out_path} is the input file; convert never overwrites its input")
    if not out_path.endswith(".safetensors"):
        raise ValueError(f"OUT: {out_path} must end in .safetensors (what convert writes, and what aid.edm.load "
                         "reads as this project's format)")
    if os.path.isdir(out_path):
        raise ValueError(f"OUT: {out_path} is a folder; give the .safetensors file to write")
    writable_dir(os.path.dirname(os.path.abspath(out_path)), "OUT")
    net = load_edm_pickle(pkl_path)
    check_finite_weights(net, pkl_path)
    save_module(net, out_path, "EDMPrecond", net.init_kwargs, {"converted_from": os.path.basename(pkl_path)})
