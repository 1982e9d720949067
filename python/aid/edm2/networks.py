"""EDM2's magnitude-preserving U-Net and its preconditioning (Karras et al. 2024), with the
module tree of NVlabs/edm2's training/networks_edm2.py, so `Precond(...).state_dict()` has
exactly the keys and shapes of an official checkpoint's `ema` (`unet.emb_noise.weight`,
`unet.enc.64x64_block0.conv_res0.weight`, `logvar_linear.weight`, ...).

Written from the paper's equations and NVlabs/edm2's training/networks_edm2.py (read, not copied). Inference only:
the forced weight normalisation of training is not implemented; instead `precompute()`
(called by the loaders) stores each layer's normalised weight once: ŵ = normalize(w)/√fan_in,
i.e. w/‖w‖ per output channel (rows of unit norm).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import aid_ext


def normalize(x: torch.Tensor, dim=None, eps: float = 1e-4) -> torch.Tensor:
    """x with unit RMS over `dim` (default: all but the first axis), eps guarding the norm (Eq. 66)."""
    dim = list(range(1, x.ndim)) if dim is None else dim
    norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True, dtype=torch.float32)
    norm = eps + norm * math.sqrt(norm.numel() / x.numel())
    return x / norm.to(x.dtype)


def mp_silu(x: torch.Tensor) -> torch.Tensor:
    """SiLU rescaled to unit magnitude for unit-variance input (Eq. 81)."""
    return F.silu(x) / 0.596


def mp_sum(a: torch.Tensor, b: torch.Tensor, t: float = 0.5) -> torch.Tensor:
    """(1−t)·a + t·b, rescaled to keep unit magnitude (Eq. 88)."""
    return a.lerp(b, t) / math.sqrt((1 - t) ** 2 + t**2)


def mp_cat(a: torch.Tensor, b: torch.Tensor, t: float = 0.5) -> torch.Tensor:
    """Channel concatenation weighting a by 1−t and b by t, at unit overall magnitude (Eq. 103)."""
    Na, Nb = a.shape[1], b.shape[1]
    C = math.sqrt((Na + Nb) / ((1 - t) ** 2 + t**2))
    return torch.cat([a * (C / math.sqrt(Na) * (1 - t)), b * (C / math.sqrt(Nb) * t)], dim=1)


def resample(x: torch.Tensor, mode: str) -> torch.Tensor:
    """EDM2's filter [1, 1]: 'down' is a 2×2 average pool, 'up' nearest-neighbour ×2 (both exact)."""
    if mode == "down":
        return F.avg_pool2d(x, 2)
    if mode == "up":
        return F.interpolate(x, scale_factor=2.0, mode="nearest")
    return x


class MPFourier(nn.Module):
    """√2·cos(2π(f·c + φ)) with random stored frequencies f and phases φ, in float32 (Eq. 75)."""

    def __init__(self, num_channels: int, bandwidth: float = 1.0):
        super().__init__()
        self.register_buffer("freqs", 2 * math.pi * torch.randn(num_channels) * bandwidth)
        self.register_buffer("phases", 2 * math.pi * torch.rand(num_channels))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        y = c.to(torch.float32).ger(self.freqs.to(torch.float32)) + self.phases.to(torch.float32)
        return (y.cos() * math.sqrt(2)).to(c.dtype)


class MPConv(nn.Module):
    """Magnitude-preserving convolution (kernel [k, k]) or linear layer (kernel []), no bias:
    y = (gain·ŵ) ⋆ x with ŵ = normalize(w)/√fan_in = w/‖w‖ per output channel (Eq. 47)."""

    def __init__(self, in_channels: int, out_channels: int, kernel):
        super().__init__()
        self.out_channels = out_channels
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, *kernel))
        self.register_buffer("w_hat", None, persistent=False)  # ŵ once precomputed; never in a state_dict

    def normalized_weight(self) -> torch.Tensor:
        w = self.weight.to(torch.float32)
        return normalize(w) / math.sqrt(w[0].numel())

    def precompute(self) -> None:
        """Store ŵ for inference (valid while the weight does not change: the loaders freeze the net)."""
        self.w_hat = self.normalized_weight().detach()

    def forward(self, x: torch.Tensor, gain=1.0) -> torch.Tensor:
        w = self.w_hat if self.w_hat is not None else self.normalized_weight()
        w = (w * gain).to(x.dtype)
        if w.ndim == 2:
            return x @ w.t()
        return F.conv2d(x, w, padding=w.shape[-1] // 2)


class Block(nn.Module):
    """Encoder/decoder block (the paper's Fig. 21): resample, (enc: 1×1 skip + pixel norm), residual
    branch modulated by the embedding, magnitude-preserving sum, optional self-attention, clipping."""

    def __init__(self,
                 in_channels: int,              # Input channels.
                 out_channels: int,             # Output channels.
                 emb_channels: int,             # Embedding channels.
                 flavor: str = "enc",           # 'enc' or 'dec'.
                 resample_mode: str = "keep",   # 'keep', 'up' or 'down'.
                 resample_filter=(1, 1),        # Only EDM2's [1, 1] is supported.
                 attention: bool = False,       # Self-attention after the residual branch?
                 channels_per_head: int = 64,   # Channels per attention head.
                 dropout: float = 0.0,          # Dropout in the residual branch (training only).
                 res_balance: float = 0.3,      # mp_sum weight of the residual branch.
                 attn_balance: float = 0.3,     # mp_sum weight of the attention branch.
                 clip_act: float | None = 256): # Clip output activations to ±clip_act (None: no clipping).
        super().__init__()
        if list(resample_filter) != [1, 1]:
            raise ValueError(f"Block: resample_filter must be [1, 1] (EDM2's), got {list(resample_filter)}")
        if flavor not in ("enc", "dec") or resample_mode not in ("keep", "up", "down"):
            raise ValueError(f"Block: flavor must be 'enc'/'dec' and resample_mode 'keep'/'up'/'down', "
                             f"got {flavor!r}, {resample_mode!r}")
        self.out_channels, self.flavor, self.resample_mode = out_channels, flavor, resample_mode
        self.num_heads = out_channels // channels_per_head if attention else 0
        self.dropout, self.res_balance, self.attn_balance, self.clip_act = dropout, res_balance, attn_balance, clip_act
        self.emb_gain = nn.Parameter(torch.zeros([]))
        self.conv_res0 = MPConv(out_channels if flavor == "enc" else in_channels, out_channels, [3, 3])
        self.emb_linear = MPConv(emb_channels, out_channels, [])
        self.conv_res1 = MPConv(out_channels, out_channels, [3, 3])
        self.conv_skip = MPConv(in_channels, out_channels, [1, 1]) if in_channels != out_channels else None
        self.attn_qkv = MPConv(out_channels, out_channels * 3, [1, 1]) if self.num_heads else None
        self.attn_proj = MPConv(out_channels, out_channels, [1, 1]) if self.num_heads else None

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """Multi-head self-attention with cosine (pixel-normalised) q, k, v. The qkv channels are
        interleaved per head as [C/heads, 3], which the checkpoints' attn_qkv weights assume."""
        N, C, H, W = x.shape
        qkv = normalize(self.attn_qkv(x).reshape(N, self.num_heads, -1, 3, H * W), dim=2)
        q, k, v = qkv.unbind(3)  # [N, heads, c, HW]
        w = torch.einsum("nhcq,nhck->nhqk", q, k / math.sqrt(q.shape[2])).softmax(dim=3)
        return self.attn_proj(torch.einsum("nhqk,nhck->nhcq", w, v).reshape(N, C, H, W))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        x = resample(x, self.resample_mode)
        if self.flavor == "enc":
            if self.conv_skip is not None:
                x = self.conv_skip(x)
            x = normalize(x, dim=1)  # pixel norm
        y = self.conv_res0(mp_silu(x))
        c = self.emb_linear(emb, gain=self.emb_gain) + 1
        y = mp_silu(y * c[:, :, None, None].to(y.dtype))
        if self.training and self.dropout:
            y = F.dropout(y, p=self.dropout)
        y = self.conv_res1(y)
        if self.flavor == "dec" and self.conv_skip is not None:
            x = self.conv_skip(x)
        x = mp_sum(x, y, self.res_balance)
        if self.num_heads:
            x = mp_sum(x, self.attend(x), self.attn_balance)
        return x if self.clip_act is None else x.clip(-self.clip_act, self.clip_act)


class UNet(nn.Module):
    """EDM2's U-Net F(x; c_noise, label): a ones channel appended to the input, no biases and
    no normalisation layers besides pixel norm, learned output gain (zero at initialisation)."""

    def __init__(self,
                 img_resolution: int,           # Resolution of the input (latent) images.
                 img_channels: int,             # Channels of the input (latent) images.
                 label_dim: int,                # Class-label dimensionality, 0 = unconditional.
                 model_channels: int = 192,     # Base channel count (XS 128, S 192, M 256, ...).
                 channel_mult=(1, 2, 3, 4),     # Per-resolution channel multipliers.
                 channel_mult_noise=None,       # Noise-embedding multiplier; None = channel_mult[0].
                 channel_mult_emb=None,         # Embedding multiplier; None = max(channel_mult).
                 num_blocks: int = 3,           # Residual blocks per resolution.
                 attn_resolutions=(16, 8),      # Resolutions with self-attention.
                 label_balance: float = 0.5,    # mp_sum weight of the class embedding.
                 concat_balance: float = 0.5,   # mp_cat weight of the main path against the skip.
                 **block_kwargs):               # Arguments for Block.
        super().__init__()
        cblock = [model_channels * m for m in channel_mult]
        cnoise = model_channels * channel_mult_noise if channel_mult_noise is not None else cblock[0]
        cemb = model_channels * channel_mult_emb if channel_mult_emb is not None else max(cblock)
        self.label_balance, self.concat_balance = label_balance, concat_balance
        self.out_gain = nn.Parameter(torch.zeros([]))
        self.emb_fourier = MPFourier(cnoise)
        self.emb_noise = MPConv(cnoise, cemb, [])
        self.emb_label = MPConv(label_dim, cemb, []) if label_dim else None

        self.enc = nn.ModuleDict()
        cout = img_channels + 1
        for level, channels in enumerate(cblock):
            res = img_resolution >> level
            if level == 0:
                cin, cout = cout, channels
                self.enc[f"{res}x{res}_conv"] = MPConv(cin, cout, [3, 3])
            else:
                self.enc[f"{res}x{res}_down"] = Block(cout, cout, cemb, "enc", "down", **block_kwargs)
            for idx in range(num_blocks):
                cin, cout = cout, channels
                self.enc[f"{res}x{res}_block{idx}"] = Block(cin, cout, cemb, "enc",
                                                            attention=res in attn_resolutions, **block_kwargs)
        skips = [block.out_channels for block in self.enc.values()]

        self.dec = nn.ModuleDict()
        for level, channels in reversed(list(enumerate(cblock))):
            res = img_resolution >> level
            if level == len(cblock) - 1:
                self.dec[f"{res}x{res}_in0"] = Block(cout, cout, cemb, "dec", attention=True, **block_kwargs)
                self.dec[f"{res}x{res}_in1"] = Block(cout, cout, cemb, "dec", **block_kwargs)
            else:
                self.dec[f"{res}x{res}_up"] = Block(cout, cout, cemb, "dec", "up", **block_kwargs)
            for idx in range(num_blocks + 1):
                cin, cout = cout + skips.pop(), channels
                self.dec[f"{res}x{res}_block{idx}"] = Block(cin, cout, cemb, "dec",
                                                            attention=res in attn_resolutions, **block_kwargs)
        self.out_conv = MPConv(cout, img_channels, [3, 3])

    def forward(self, x, noise_labels, class_labels=None):
        emb = self.emb_noise(self.emb_fourier(noise_labels))
        if self.emb_label is not None:
            emb = mp_sum(emb, self.emb_label(class_labels * math.sqrt(class_labels.shape[1])), self.label_balance)
        emb = mp_silu(emb)
        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        skips = []
        for name, block in self.enc.items():
            x = block(x) if name.endswith("_conv") else block(x, emb)
            skips.append(x)
        for name, block in self.dec.items():
            if "block" in name:
                x = mp_cat(x, skips.pop(), self.concat_balance)
            x = block(x, emb)
        return self.out_conv(x, gain=self.out_gain)


class Precond(nn.Module):
    """D(x; σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x; ¼ ln σ, label), EDM's preconditioning (the
    scalings by aid_ext's fused ops). logvar_* is EDM2's training-time uncertainty head u(σ): kept
    so that official state dicts load strictly, unused at inference."""

    def __init__(self,
                 img_resolution: int,           # Resolution of the (latent) images.
                 img_channels: int,             # Channels of the (latent) images.
                 label_dim: int = 0,            # Class-label dimensionality, 0 = unconditional.
                 use_fp16: bool = True,         # Run the U-Net in float16 (on CUDA only)?
                 sigma_data: float = 0.5,       # Expected standard deviation of the training data.
                 logvar_channels: int = 128,    # Width of the uncertainty head.
                 **unet_kwargs):                # Arguments for UNet (and Block).
        super().__init__()
        self.init_kwargs = dict(img_resolution=img_resolution, img_channels=img_channels, label_dim=label_dim,
                                use_fp16=use_fp16, sigma_data=sigma_data, logvar_channels=logvar_channels,
                                **unet_kwargs)  # what checkpoints record
        self.img_resolution, self.img_channels, self.label_dim = img_resolution, img_channels, label_dim
        self.use_fp16, self.sigma_data = use_fp16, sigma_data
        self.unet = UNet(img_resolution=img_resolution, img_channels=img_channels, label_dim=label_dim,
                         **unet_kwargs)
        self.logvar_fourier = MPFourier(logvar_channels)
        self.logvar_linear = MPConv(logvar_channels, 1, [])

    def precompute(self) -> "Precond":
        """Fix every layer's normalised weight ŵ (inference; see the module doc)."""
        for m in self.modules():
            if isinstance(m, MPConv):
                m.precompute()
        return self

    def forward(self, x, sigma, class_labels=None, force_fp32=False):
        """x [B, C, H, W]; sigma [B] (or one element); class_labels [1 or B, label_dim] (zeros if None, as
        EDM2 does: out of distribution for its conditional nets). Returns D(x; σ) in float32."""
        x = x.to(torch.float32)
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1)
        sigma = sigma.expand(x.shape[0]) if sigma.numel() == 1 else sigma
        if self.label_dim and class_labels is None:
            class_labels = torch.zeros([x.shape[0], self.label_dim], device=x.device)
        elif self.label_dim:
            if class_labels.dim() != 2 or class_labels.shape[0] not in (1, x.shape[0]) \
                    or class_labels.shape[1] != self.label_dim:
                raise ValueError(f"Precond: class_labels must be [1 or B, label_dim] = [1 or {x.shape[0]}, "
                                 f"{self.label_dim}], got {list(class_labels.shape)}")
            class_labels = class_labels.to(torch.float32).expand(x.shape[0], -1)
        dtype = torch.float16 if self.use_fp16 and not force_fp32 and x.device.type == "cuda" else torch.float32
        x_in = aid_ext.edm_scale_input(x, sigma, self.sigma_data)
        F_x = self.unet(x_in.to(dtype), sigma.log() / 4, class_labels)
        return aid_ext.edm_denoise(x, F_x.to(torch.float32), sigma, self.sigma_data)
