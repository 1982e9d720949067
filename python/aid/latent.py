"""AID and the baselines in EDM2's latent space (docs/edm2-latent.md).

Per image x (pixels in [−1, 1]) and pixel mask m (1 = known):
- m_lat = latent_mask(m): a latent cell is known only if all f×f pixels under it are known
  (max-pool of the holes, f the VAE's factor). The VAE is not local, so a cell that touches a
  hole is treated as unknown: the conservative rule.
- y_lat = m_lat ⊙ E(m⊙x): the whitened latent of the masked image (holes at 0, mid-grey), which
  is all that deployment has. Training conditions the actor on exactly this (AIDTrainer's y),
  not on m_lat⊙E(x), which differs from it near holes.
- the terminal cost Ψ compares X_K with x0_lat = E(x) in the whitened latent space, on m_lat.
- sampling ends with a decode, then the known pixels are pasted in pixel space; metrics are
  computed on those pixels (`pixel_metrics`).

`encoding` is "mean" (the posterior mean, deterministic) or "sample" (EDM2's stochastic encoding).
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

import aid_ext
from aid.baselines import METHODS
from aid.baselines.guided import gradient_guided
from aid.core.common import known_part
from aid.eval.metrics import psnr, ssim
from aid.guidance.sample import sample_aid

# The baselines that act on (y, m) alone, so they run unchanged on (y_lat, m_lat).
LATENT_METHODS = ("paste", "replacement", "repaint", "ddnm", "diffpir", "dps", "pigdm")


def latent_mask(mask: torch.Tensor, factor: int) -> torch.Tensor:
    """Pixel mask [B, 1, H, W] (1 = known) → [B, 1, H/factor, W/factor]: 1 where no pixel of the cell is a hole."""
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[2] % factor or mask.shape[3] % factor:
        raise ValueError(f"latent_mask: mask must be [B, 1, H, W] with H, W multiples of {factor}, "
                         f"got {list(mask.shape)}")
    return 1 - F.max_pool2d(1 - mask.float(), factor)


def encode_known(codec, images, mask, encoding: str = "mean", generator=None):
    """(y_lat, m_lat) for the known part of images: the latent of m⊙x, masked to the latent grid."""
    m_lat = latent_mask(mask, codec.factor)
    return m_lat * codec.encode(mask * known_part(images, mask), encoding, generator), m_lat


def train_step(trainer, codec, images, mask, generator, encoding: str = "mean", class_labels=None) -> dict:
    """One AIDTrainer iteration on pixel images [B, 3, H, W] and masks [B, 1, H, W]: encode x0 and the
    masked image, then the actor–critic step in latent space (terminal cost against E(x0))."""
    if class_labels is not None:
        if not hasattr(trainer.backbone, "class_labels"):
            raise TypeError("train_step: class_labels needs the trainer's backbone to be an aid.edm2.Denoiser")
        trainer.backbone.class_labels = class_labels  # this batch's labels
    with torch.no_grad():
        x0_lat = codec.encode(images, encoding, generator)
        y_lat, m_lat = encode_known(codec, images, mask, encoding, generator)
    return trainer.step(x0_lat, m_lat, generator, y=y_lat)


def paste_pixels(x, images, mask) -> torch.Tensor:
    """m⊙images + (1−m)⊙x in pixel space (the hole of images is never read)."""
    mask = mask.float()
    return aid_ext.mask_project(x, mask, known_part(images.float(), mask), torch.zeros(x.shape[0], device=x.device))


def _decode_and_paste(codec, z, images, mask, report, t0):
    x = paste_pixels(codec.decode(z), images, mask)
    return x, {**report, "vae_decodes": z.shape[0], "seconds": time.perf_counter() - t0}


@torch.no_grad()
def sample_latent_aid(backbone, codec, actor, images, mask, seeds, encoding: str = "mean", **sample_kwargs):
    """Inpaint pixel images with AID in latent space: y_lat, m_lat from the known pixels, aid.sample_aid
    on the latents (no latent paste), decode, paste the known pixels. Returns (x [B, 3, H, W], report)."""
    t0 = time.perf_counter()
    y_lat, m_lat = encode_known(codec, images, mask, encoding)
    z, report = sample_aid(backbone, actor, y_lat, m_lat, seeds, paste=False, project=False, **sample_kwargs)
    return _decode_and_paste(codec, z, images, mask, report, t0)


@torch.no_grad()
def latent_baseline(method: str, backbone, codec, images, mask, seeds, encoding: str = "mean", **kwargs):
    """A baseline of aid.baselines run on (y_lat, m_lat), then decode and paste the known pixels."""
    if method not in LATENT_METHODS:
        raise ValueError(f"latent_baseline: method must be one of {LATENT_METHODS} (decoder DPS: latent_dps), "
                         f"got {method!r}")
    t0 = time.perf_counter()
    y_lat, m_lat = encode_known(codec, images, mask, encoding)
    z, report = METHODS[method](backbone, y_lat, m_lat, seeds, **kwargs)
    return _decode_and_paste(codec, z, images, mask, report, t0)


def latent_dps(backbone, codec, images, mask, seeds, num_steps: int = 100, zeta: float = 1.0,
               encoding: str = "mean"):
    """DPS with the measurement in pixel space: x' = Euler(x) − ζ·∇ₓ‖m⊙(y − Dec(D(x)))‖₂, the gradient
    through the VAE decoder and the backbone (PSLD/ReSample-style). Report: each VJP is a backbone
    plus a decoder backward; vae_decodes counts the decoder forwards."""
    t0 = time.perf_counter()
    mask = mask.float()
    images = known_part(images.float(), mask)  # only the known pixels are read
    y_lat, m_lat = encode_known(codec, images, mask, encoding)
    residual = lambda D, run: (mask * (images - codec.decode(D))).flatten(1).norm(dim=1).sum()  # noqa: E731
    with torch.no_grad():
        z, report = gradient_guided(backbone, y_lat, m_lat, seeds, num_steps, -zeta, residual)
    x, report = _decode_and_paste(codec, z, images, mask, report, t0)
    return x, {**report, "vae_decodes": report["vae_decodes"] + num_steps * images.shape[0]}


def pixel_metrics(x, images, mask) -> dict:
    """PSNR over the image and over the hole, SSIM, in pixel space (aid.eval.metrics), averaged over the batch."""
    return {"psnr": psnr(x, images).mean().item(), "psnr_hole": psnr(x, images, 1 - mask).mean().item(),
            "ssim": ssim(x, images).mean().item()}
