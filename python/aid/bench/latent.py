"""The speed–quality benchmark in EDM2's latent space:

    aid bench --vae sd-vae-ft-mse/ --backbone edm2-img512-s-uncond-....pkl --data imagenet-val-512/ --out runs/sq512

The grid, the cost rule, resume, merge and torchrun sharding are aid.bench.run's; here are what differs: the test
images are the first --images of --data (pixels, 3×H×W) with their --class-labels, every method runs on the latents
of the EDM2 net (aid.latent.latent_method: encode the known pixels, sample, decode, paste the known pixels) and is
measured on the decoded pixels; an autoguided net's two evaluations per call count as two NFE in every cost; and
FD/KD_fmnist are left out (their classifier reads 1×32×32 Fashion-MNIST)."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

import torch

from aid.bench.cells import cell_metrics, points
from aid.bench.results import BenchmarkError
from aid.bench.settings import Settings
from aid.core.checkpoint import sha256_of, tensors_fingerprint
from aid.data.datasets import image_dataset
from aid.edm import DEFAULT_BACKBONE
from aid.edm2 import options as edm2_options
from aid.latent import latent_method, load_latent
from aid.methods import base_method

FD_KEYS = ("fd_fmnist", "kd_fmnist", "kd_fmnist_std")


@dataclass
class LatentSettings(Settings):
    """Settings of a latent-space benchmark: the `aid bench` flags of aid.bench.run, and those of aid.edm2.options
    with --data, the test images."""

    vae: str | None = None
    data: str | None = None
    guide: str | None = None
    guidance_weight: float | None = None
    class_labels: str | int | None = None

    def __post_init__(self):
        super().__post_init__()
        if not self.vae:
            raise ValueError("LatentSettings: vae (--vae DIR) is required")
        if self.backbone == DEFAULT_BACKBONE:
            raise ValueError("--vae needs --backbone, an EDM2 latent net (.pkl, e.g. edm2-img512-s-uncond-...)")
        if not self.data:
            raise ValueError("--vae needs --data IMAGES: the test images (a folder or an EDM dataset zip, in pixels "
                             "at 8× the EDM2 net's latent resolution)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """--data and aid.edm2.options' flags."""
    edm2_options.add_arguments(p)
    p.add_argument("--data", metavar="IMAGES", help="with --vae: the test images, a folder or an EDM dataset zip "
                   "(its first --images, in sorted order)")


def settings_class(a: argparse.Namespace) -> type[Settings]:
    """LatentSettings with --vae, else Settings; the EDM2 flags and --data are refused without --vae."""
    edm2_options.check(a)
    if a.data and not a.vae:
        raise ValueError("--data applies with --vae; the pixel benchmark runs on Fashion-MNIST's test split")
    return LatentSettings if a.vae else Settings


def prepare(s: LatentSettings, device: torch.device):
    """(the Denoiser, the test images [s.images, 3, H, W], wrap(name, sampler) -> its latent form), or a
    BenchmarkError with the reason."""
    try:
        net, codec = load_latent(s.backbone, s.vae, s.guide, s.guidance_weight, device)
        gt, data_labels = image_dataset(s.data, max_images=s.images)
        res = net.img_resolution * codec.factor
        if tuple(gt.shape[1:]) != (3, res, res):
            raise ValueError(f"--data: the images are {gt.shape[1]}×{gt.shape[2]}×{gt.shape[3]}; the latents of "
                             f"--backbone decode to 3×{res}×{res}")
        if len(gt) < s.images:
            raise ValueError(f"--data: {s.data} holds {len(gt)} images, --images asks for {s.images}")
        index = edm2_options.labels_for(s.class_labels, net.label_dim, data_labels, len(gt), "--data")
    except (FileNotFoundError, ImportError, ValueError, TypeError, KeyError) as e:
        raise BenchmarkError(str(e)) from None
    labels = None if index is None else lambda seeds: index[torch.as_tensor(seeds)]  # image i has seed i

    def wrap(name: str, fn):
        return latent_method(base_method(name), fn, codec, labels)
    return net, gt, wrap


def setup(s: Settings, gt: torch.Tensor) -> dict:
    """What a latent benchmark's results.json records beside aid.bench.run's setup (a resume on others is refused):
    the VAE's files, the guide, the weight, the labels and the test images; {} for the pixel benchmark."""
    if not isinstance(s, LatentSettings):
        return {}
    vae = {n: sha256_of(os.path.join(s.vae, n)) for n in sorted(os.listdir(s.vae))
           if n.endswith((".json", ".safetensors", ".bin"))}
    return {"latent": dict(vae_sha256=vae, guide_sha256=s.guide and sha256_of(s.guide),
                           guidance_weight=s.guidance_weight, class_labels=s.class_labels,
                           images_fingerprint=tensors_fingerprint({"images": gt}))}


def grid_points(name: str, fn, targets: list[int], with_default: bool, per_call: int) -> list[dict]:
    """aid.bench.cells.points with each cost counted per_call times (an autoguided net evaluates two networks per
    call): the N nearest to target T for cost·per_call is the one nearest to T/per_call for cost."""
    pts = points(name, fn, [t / per_call for t in targets], with_default)
    return [dict(p, targets=[round(t * per_call) for t in p["targets"]]) for p in pts]


def metrics(s: Settings, x, gt, mask) -> dict:
    """aid.bench.cells.cell_metrics; FD/KD_fmnist left out in latent space (their classifier reads Fashion-MNIST)."""
    if not isinstance(s, LatentSettings):
        return cell_metrics(x, gt, mask, s.fd_min_images)
    out = cell_metrics(x, gt, mask, len(x) + 1)
    return {**out, **dict.fromkeys(FD_KEYS, "skipped (latent space: FD_fmnist's classifier reads Fashion-MNIST)")}
