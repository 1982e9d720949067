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

`encoding` is "mean" (the posterior mean, deterministic) or "sample" (EDM2's stochastic encoding); the
commands (`aid train/inpaint/bench --vae`) use "mean". For them this module also holds the loading of an
EDM2 net and a VAE (load_latent), the training problem of aid.guidance.train (LatentProblem) and the
wrapper that runs any sampler of aid.methods on pixels through the latents (latent_sampler).
"""
from __future__ import annotations

import functools
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

import aid_ext
from aid.baselines import METHODS, defaults
from aid.baselines.guided import gradient_guided
from aid.core.checkpoint import tensors_fingerprint
from aid.core.common import known_part
from aid.core.distributed import rank_and_world
from aid.edm2.options import bind_labels, labels_for, load_denoiser
from aid.edm2.vae import LatentCodec, load_vae
from aid.eval.metrics import psnr, ssim
from aid.guidance.actor_critic import projects
from aid.guidance.sample import sample_aid

# The baselines that act on (y, m) alone, so they run unchanged on (y_lat, m_lat); DEFT and AID too, with modules
# trained on latents.
LATENT_METHODS = ("paste", "replacement", "repaint", "ddnm", "diffpir", "dps", "pigdm", "ding", "daps")
# AID in latent space: no latent paste and no projection after each step. The known cells' latents E(m⊙x) are
# not E(x) near a hole (the VAE is not local); the known pixels are pasted after the decode instead.
LATENT_AID = dict(paste=False, project=False)


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


@torch.no_grad()
def encode_problem(codec, images, mask, encoding: str = "mean", generator=None):
    """(x0_lat, m_lat, y_lat) that AID trains on for pixel images and masks: x0_lat = E(x) (what Ψ compares
    with), and encode_known's y_lat, m_lat (what the actor sees, as in deployment)."""
    y_lat, m_lat = encode_known(codec, images, mask, encoding, generator)
    return codec.encode(images, encoding, generator), m_lat, y_lat


def train_step(trainer, codec, images, mask, generator, encoding: str = "mean", class_labels=None) -> dict:
    """One AIDTrainer iteration on pixel images [B, 3, H, W] and masks [B, 1, H, W]: encode x0 and the
    masked image, then the actor–critic step in latent space (terminal cost against E(x0))."""
    if class_labels is not None:
        if not hasattr(trainer.backbone, "class_labels"):
            raise TypeError("train_step: class_labels needs the trainer's backbone to be an aid.edm2.Denoiser")
        trainer.backbone.class_labels = class_labels  # this batch's labels
    x0_lat, m_lat, y_lat = encode_problem(codec, images, mask, encoding, generator)
    return trainer.step(x0_lat, m_lat, generator, y=y_lat)


def load_latent(backbone: str, vae: str, guide: str | None = None, guidance_weight: float | None = None,
                device="cpu"):
    """(the autoguided EDM2 Denoiser of --backbone and --guide, the LatentCodec of the VAE folder --vae), checked
    to fit each other."""
    D = load_denoiser(backbone, guide, guidance_weight, device)
    codec = LatentCodec(load_vae(vae, device))
    if D.img_channels != codec.latent_channels:
        raise ValueError(f"--backbone makes {D.img_channels}-channel images, the latents of --vae have "
                         f"{codec.latent_channels} channels: --backbone must be an EDM2 latent net (img512-...)")
    return D, codec


def training_problem(a, device) -> tuple:
    """(backbone, data, problem) of `aid train --vae` (aid.guidance.train.run's load_problem): the Denoiser of
    --backbone/--guide/--guidance-weight, the pixel images of --data with their --class-labels, LatentProblem."""
    from aid.data.datasets import image_dataset
    from aid.edm import DEFAULT_BACKBONE
    if a.backbone == DEFAULT_BACKBONE:
        raise ValueError("--vae needs --backbone, an EDM2 latent net (.pkl, e.g. edm2-img512-s-uncond-...)")
    if not a.data:
        raise ValueError("--vae needs --data IMAGES: the training images (a folder or an EDM dataset zip), in pixels "
                         "at 8× the EDM2 net's latent resolution (512×512 for img512 nets)")
    D, codec = load_latent(a.backbone, a.vae, a.guide, a.guidance_weight, device)
    data, data_labels = image_dataset(a.data)
    labels = labels_for(a.class_labels, D.label_dim, data_labels, len(data), "--data")
    return D, data, LatentProblem(D, codec, data, labels)


class LatentProblem:
    """aid.guidance.train's problem (see its PixelProblem) in EDM2's latent space: the data and the masks are
    pixels; each iteration maps this rank's rows to encode_problem's (x0_lat, m_lat, y_lat) (the posterior mean)
    and binds their class labels (labels [N], one per data row, or None) to the Denoiser. x0_lat = E(x) is
    encoded once for all of data at the start (encode_data); y_lat = E(m⊙x) on the fly, since it depends on the
    mask drawn with the image (docs/edm2-latent.md measures both costs)."""

    def __init__(self, denoiser, codec, data: torch.Tensor, labels: torch.Tensor | None = None, progress=True):
        self.denoiser, self.codec, self.labels = denoiser, codec, labels
        self.x0_lat = encode_data(codec, data, progress and rank_and_world()[0] == 0)
        self.setup = dict(space="latent", encoding="mean", vae_factor=codec.factor,
                          guidance_weight=denoiser.guidance,  # the setup's backbone fingerprint holds net and guide
                          class_labels=None if labels is None else "per image")

    def image_shape(self, backbone) -> tuple[int, int, int]:
        res = backbone.img_resolution * self.codec.factor
        return 3, res, res

    def check(self, trainer) -> None:
        if projects(trainer.actor):
            raise ValueError("train_aid: a projecting actor (GuidanceModule(project=True)) rolls with m⊙x0 pasted, "
                             "which in latent space is the clean image's latent that deployment never has; train "
                             "it without (--actor without \"project\")")

    def fingerprints(self) -> dict:
        labels = {} if self.labels is None else {"labels": tensors_fingerprint({"labels": self.labels})}
        return {"vae": tensors_fingerprint(self.codec.vae.state_dict()), **labels}

    @torch.no_grad()
    def __call__(self, idx, images, mask, generator):
        if self.labels is not None:
            bind_labels(self.denoiser, self.labels[idx], images.device)
        y_lat, m_lat = encode_known(self.codec, images, mask)
        return self.x0_lat[idx.to(self.x0_lat.device)], m_lat, y_lat


@torch.no_grad()
def encode_data(codec, data: torch.Tensor, progress: bool = False) -> torch.Tensor:
    """E(x), the posterior mean, of every image of data [N, 3, H, W], on the VAE's device: in the same chunks of
    codec.batch_size on every start and every process, so that resumes and torchrun runs stay exact."""
    device = next(codec.vae.parameters()).device
    chunks = tqdm(data.split(codec.batch_size), desc="encoding the training images", unit="chunk",
                  disable=not progress, dynamic_ncols=True)
    return torch.cat([codec.encode(x.to(device), "mean") for x in chunks])


def paste_pixels(x, images, mask) -> torch.Tensor:
    """m⊙images + (1−m)⊙x in pixel space (the hole of images is never read)."""
    mask = mask.float()
    return aid_ext.mask_project(x, mask, known_part(images.float(), mask), torch.zeros(x.shape[0], device=x.device))


def _decode_and_paste(codec, z, images, mask, report, t0):
    x = paste_pixels(codec.decode(z), images, mask)
    return x, {**report, "vae_decodes": z.shape[0], "seconds": time.perf_counter() - t0}


def latent_sampler(fn, codec, labels=None, **fixed):
    """A sampler of pixel images, run(net, y, mask, seeds, **kwargs) -> (x, report), from fn, a sampler of
    latents with the same signature (aid.methods.load_sampler's): encode the known pixels (encode_known), fn on
    (y_lat, m_lat) with fixed and kwargs, decode, paste the known pixels. labels(seeds) gives the images' class
    indices, bound to net (an EDM2 Denoiser) for the call; None: net's labels stay as they are. run keeps fn's
    signature for inspect (the benchmark reads the hyperparameters' defaults from it)."""
    sample = functools.partial(fn, **fixed) if fixed else fn  # its signature shows the fixed values

    @torch.no_grad()
    def run(net, y, mask, seeds, **kwargs):
        t0 = time.perf_counter()
        if labels is not None:
            bind_labels(net, labels(seeds), y.device)
        y_lat, m_lat = encode_known(codec, y, mask)
        z, report = sample(net, y_lat, m_lat, seeds, **kwargs)
        return _decode_and_paste(codec, z, y, mask, report, t0)
    return functools.update_wrapper(run, sample)


class NotInLatentSpace(ValueError):
    """A method that runs on pixel images only."""


def latent_method(method: str, fn, codec, labels=None):
    """latent_sampler of aid.methods.load_sampler(method, ...)'s fn, AID in its latent form (LATENT_AID). The mean
    of samples (aid_sharp_mean2) is refused: it averages pixel images clamped to [-1, 1], not latents."""
    if defaults(fn).get("samples", 1) != 1:
        raise NotInLatentSpace("the mean of samples (aid.methods.mean_of_samples) averages pixel images; it does "
                               "not run in latent space")
    return latent_sampler(fn, codec, labels, **(LATENT_AID if method == "aid" else {}))


def sample_latent_aid(backbone, codec, actor, images, mask, seeds, **sample_kwargs):
    """Inpaint pixel images with AID in latent space: y_lat, m_lat from the known pixels, aid.sample_aid
    on the latents (LATENT_AID: no latent paste), decode, paste the known pixels. Returns (x [B, 3, H, W], report)."""
    def aid(net, y, mask, seeds, **kwargs):
        return sample_aid(net, actor, y, mask, seeds, **kwargs)
    return latent_sampler(aid, codec, **LATENT_AID)(backbone, images, mask, seeds, **sample_kwargs)


def latent_baseline(method: str, backbone, codec, images, mask, seeds, **kwargs):
    """A baseline of aid.baselines run on (y_lat, m_lat), then decode and paste the known pixels."""
    if method not in LATENT_METHODS:
        raise ValueError(f"latent_baseline: method must be one of {LATENT_METHODS} (decoder DPS: latent_dps), "
                         f"got {method!r}")
    return latent_sampler(METHODS[method], codec)(backbone, images, mask, seeds, **kwargs)


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
