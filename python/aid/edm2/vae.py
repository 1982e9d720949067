"""Pixels ↔ EDM2 latents through the Stable Diffusion VAE (`stabilityai/sd-vae-ft-mse`), with
EDM2's exact conventions (NVlabs/edm2 training/encoders.py):

- the VAE is fed pixels in [0, 1], not [−1, 1] (the whitening constants assume it);
- its latents are whitened per channel: z = (raw − μ_c)·σ_final/σ_c + μ_final, with EDM2's
  μ = RAW_MEAN, σ = RAW_STD, μ_final = 0, σ_final = 0.5 (this replaces SD's 0.18215);
- encoding draws mean + std·ε from the posterior (EDM2's), or takes its mean (an option here);
- decoding clamps to [0, 1]; EDM2 then rounds to uint8, here the result stays float in [−1, 1].

The VAE is diffusers' AutoencoderKL (`pip install aid-ext[latent]`), loaded only from a local
folder (config.json + weights): nothing is ever downloaded.
"""
from __future__ import annotations

import os

import torch

RAW_MEAN = (5.81, 3.25, 0.12, -2.15)   # EDM2's assumed per-channel mean of sd-vae-ft-mse latents
RAW_STD = (4.17, 4.62, 3.71, 3.28)     # ... and standard deviation
FINAL_MEAN, FINAL_STD = 0.0, 0.5       # what the EDM2 networks were trained on

INSTALL_HINT = "the latent pipeline needs diffusers: pip install 'aid-ext[latent]' (or pip install diffusers)"


def _per_channel(values, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float32, device=like.device).view(1, -1, 1, 1)


def whiten(raw: torch.Tensor, raw_mean=RAW_MEAN, raw_std=RAW_STD) -> torch.Tensor:
    """Raw VAE latents [B, 4, h, w] → the EDM2 network's latents."""
    if raw.dim() != 4 or raw.shape[1] != len(raw_mean):
        raise ValueError(f"whiten: raw must be [B, {len(raw_mean)}, h, w], got {list(raw.shape)}")
    scale = FINAL_STD / _per_channel(raw_std, raw)
    return (raw.float() - _per_channel(raw_mean, raw)) * scale + FINAL_MEAN


def unwhiten(z: torch.Tensor, raw_mean=RAW_MEAN, raw_std=RAW_STD) -> torch.Tensor:
    """The inverse of whiten: network latents → raw VAE latents."""
    if z.dim() != 4 or z.shape[1] != len(raw_mean):
        raise ValueError(f"unwhiten: z must be [B, {len(raw_mean)}, h, w], got {list(z.shape)}")
    scale = FINAL_STD / _per_channel(raw_std, z)
    return (z.float() - FINAL_MEAN) / scale + _per_channel(raw_mean, z)


def load_vae(folder: str, device="cpu", dtype=torch.float32):
    """diffusers.AutoencoderKL from a local folder (e.g. a copy of stabilityai/sd-vae-ft-mse:
    config.json and diffusion_pytorch_model.safetensors), frozen. Never touches the network."""
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise FileNotFoundError(f"load_vae: {folder!r} is not a VAE folder (no config.json); pass a local copy of "
                                "stabilityai/sd-vae-ft-mse (config.json + diffusion_pytorch_model.safetensors)")
    try:
        from diffusers import AutoencoderKL  # optional dependency: only the latent pipeline needs it
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    # low_cpu_mem_usage=False: without the optional package accelerate, diffusers would warn about it on every load
    vae = AutoencoderKL.from_pretrained(folder, local_files_only=True, torch_dtype=dtype, low_cpu_mem_usage=False)
    return vae.eval().requires_grad_(False).to(device)


class LatentCodec:
    """Images [B, 3, H, W] in [−1, 1] ↔ whitened latents [B, 4, H/f, W/f], f the VAE's factor (8 for SD).

    vae: an AutoencoderKL (see load_vae), or any module with the same interface:
    `.encode(x).latent_dist.{mean, std}`, `.decode(z).sample`, `.config.{latent_channels,
    block_out_channels}`. Decoding keeps the autograd graph (DPS differentiates through it)."""

    def __init__(self, vae, batch_size: int = 8, raw_mean=RAW_MEAN, raw_std=RAW_STD):
        if vae.config.latent_channels != len(raw_mean) or len(raw_std) != len(raw_mean):
            raise ValueError(f"LatentCodec: the VAE has {vae.config.latent_channels} latent channels, the whitening "
                             f"constants {len(raw_mean)} means and {len(raw_std)} stds")
        if batch_size < 1:
            raise ValueError(f"LatentCodec: batch_size must be >= 1, got {batch_size}")
        self.vae, self.batch_size, self.raw_mean, self.raw_std = vae, batch_size, raw_mean, raw_std
        self.factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.latent_channels = vae.config.latent_channels

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    def encode(self, images: torch.Tensor, mode: str = "sample", generator: torch.Generator | None = None):
        """Whitened latents of images in [−1, 1]: the posterior mean ("mean") or a draw ("sample", EDM2's)."""
        if mode not in ("mean", "sample"):
            raise ValueError(f"LatentCodec.encode: mode must be 'mean' or 'sample', got {mode!r}")
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[2] % self.factor or images.shape[3] % self.factor:
            raise ValueError(f"LatentCodec.encode: images must be [B, 3, H, W] with H, W multiples of {self.factor}, "
                             f"got {list(images.shape)}")
        raws = []
        for x in images.split(self.batch_size):
            post = self.vae.encode(((x.float() + 1) / 2).to(self.dtype)).latent_dist  # EDM2 feeds [0, 1]
            raw = post.mean.float()
            if mode == "sample":
                raw = raw + post.std.float() * torch.randn(raw.shape, generator=generator, device=raw.device)
            raws.append(raw)
        return whiten(torch.cat(raws), self.raw_mean, self.raw_std)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [−1, 1] (float) from whitened latents."""
        raw = unwhiten(z, self.raw_mean, self.raw_std).to(self.dtype)
        x = torch.cat([self.vae.decode(r).sample for r in raw.split(self.batch_size)])
        return x.float().clamp(0, 1) * 2 - 1
