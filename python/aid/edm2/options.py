"""The flags that put `aid train`, `aid inpaint` and `aid bench` in EDM2's latent space, and what they load:

    --vae DIR             a local copy of stabilityai/sd-vae-ft-mse: work in the latent space of an EDM2 --backbone
    --guide FILE          autoguidance: EDM2's guide network (e.g. the XS net of EDM2's preset)
    --guidance-weight G   D = D_guide + G·(D_net − D_guide); G ≠ 1 costs two network evaluations per step
    --class-labels L      a conditional net's class: "data" (each image's label from its dataset.json) or an index

Every check names the flag at fault and runs before any network is read (check)."""
from __future__ import annotations

import argparse

import torch

from aid.core.argtypes import finite_float
from aid.edm2.denoiser import Denoiser, one_hot
from aid.edm2.load import load

EDM2_FLAGS = ("guide", "guidance_weight", "class_labels")  # meaningful only with --vae


def class_labels_arg(text: str) -> str | int:
    """--class-labels: "data" or a class index >= 0."""
    if text == "data":
        return text
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected 'data' or a class index >= 0, got {text!r}")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The latent-space flags, in their own group of p's --help."""
    g = p.add_argument_group("EDM2 latent space (ImageNet-512; docs/edm2-latent.md)")
    g.add_argument("--vae", metavar="DIR", help="a local copy of stabilityai/sd-vae-ft-mse (config.json + "
                   "diffusion_pytorch_model.safetensors): work in EDM2's latent space; --backbone is then an EDM2 "
                   ".pkl (or its converted .safetensors), images and masks stay pixels")
    g.add_argument("--guide", metavar="FILE", help="with --vae: autoguidance by this EDM2 guide network (.pkl or "
                   ".safetensors, e.g. EDM2's XS net of the same data)")
    g.add_argument("--guidance-weight", type=finite_float(), metavar="G", help="with --guide: the autoguidance "
                   "weight, D = D_guide + G·(D_net − D_guide) [1: the net alone]; G ≠ 1 counts 2 NFE per step")
    g.add_argument("--class-labels", type=class_labels_arg, metavar="data|N", help="with --vae and a "
                   "class-conditional net: 'data' (each image's label from the dataset.json of the images' zip or "
                   "folder) or one class index N for every image [none: the net must be unconditional]")


def check(a: argparse.Namespace) -> None:
    """The EDM2 flags go with --vae, and --guidance-weight with --guide (before anything is loaded)."""
    given = [f for f in EDM2_FLAGS if getattr(a, f, None) is not None]
    if given and not a.vae:
        raise ValueError(f"--{given[0].replace('_', '-')} applies in EDM2's latent space only: pass --vae DIR "
                         "(and an EDM2 --backbone)")
    if a.guidance_weight is not None and a.guidance_weight != 1 and not a.guide:
        raise ValueError(f"--guidance-weight {a.guidance_weight:g} needs --guide FILE, the guide network")


def load_denoiser(backbone: str, guide: str | None, weight: float | None, device) -> Denoiser:
    """The EDM2 net of --backbone, autoguided by --guide with --guidance-weight (aid.edm2.Denoiser), frozen."""
    def read(path: str, flag: str):
        try:
            return load(path, device)
        except (FileNotFoundError, ValueError, TypeError, KeyError) as e:
            raise type(e)(f"{flag}: {path} is not an EDM2 network ({e})") from None
    net = read(backbone, "--backbone")
    gnet = read(guide, "--guide") if guide else None
    try:
        return Denoiser(net, gnet, 1.0 if weight is None else weight)
    except ValueError as e:
        raise ValueError(f"--guide: {e}") from None


def labels_for(spec: str | int | None, label_dim: int, data_labels: torch.Tensor | None, n: int, what: str):
    """Each of the n images' class index [n] (int64), or None for an unconditional net. spec: --class-labels;
    data_labels: the images' labels from their dataset.json, if any; what: the flag that names the images."""
    if spec is None:
        if label_dim:
            raise ValueError(f"--backbone is class-conditional ({label_dim} classes): pass --class-labels data (the "
                             f"labels of {what}) or a class index")
        return None
    if not label_dim:
        raise ValueError("--class-labels: --backbone is unconditional; leave --class-labels out")
    if spec == "data":
        if data_labels is None:
            raise ValueError(f"--class-labels data: {what} has no labels (a dataset.json with {{\"labels\": "
                             f"[[name, class], ...]}} in its zip or folder); or give one class index")
        labels = data_labels.long()
    else:
        labels = torch.full((n,), int(spec), dtype=torch.int64)
    if labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) < label_dim:
        raise ValueError(f"--class-labels: classes must be in [0, {label_dim}), got {int(labels.min())} … "
                         f"{int(labels.max())}")
    return labels


def bind_labels(denoiser: Denoiser, labels: torch.Tensor | None, device) -> None:
    """Bind these images' one-hot class labels to the denoiser for its next calls (None: unconditional)."""
    denoiser.class_labels = None if labels is None else one_hot(labels, denoiser.label_dim, device)
