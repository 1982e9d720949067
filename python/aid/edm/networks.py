"""SongUNet (DDPM++ / NCSN++) and EDMPrecond with the official module tree, so that
`EDMPrecond(...).state_dict()` has exactly the keys of an official EDM checkpoint's `ema`
(`model.map_layer0.weight`, `model.enc.16x16_block2.qkv.weight`, ...)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import aid_ext
from aid.edm.layers import Conv2d, FourierEmbedding, GroupNorm, Linear, PositionalEmbedding, UNetBlock


def drop_labels(labels, p: float, training: bool):
    """Zero whole label vectors with probability p while training (for classifier-free guidance)."""
    if not (training and p):
        return labels
    keep = torch.rand([labels.shape[0], 1], device=labels.device) >= p
    return labels * keep.to(labels.dtype)


class SongUNet(nn.Module):
    """The DDPM++ (embedding 'positional', encoder 'standard') and NCSN++ ('fourier',
    'residual') U-Nets of Song et al. 2021 as configured by EDM."""

    def __init__(self,
                 img_resolution,                # Image resolution at input/output.
                 in_channels,                   # Number of color channels at input.
                 out_channels,                  # Number of color channels at output.
                 label_dim=0,                   # Number of class labels, 0 = unconditional.
                 augment_dim=0,                 # Augmentation label dimensionality, 0 = no augmentation.
                 model_channels=128,            # Base multiplier for the number of channels.
                 channel_mult=(1, 2, 2, 2),     # Per-resolution multipliers for the number of channels.
                 channel_mult_emb=4,            # Multiplier for the dimensionality of the embedding vector.
                 num_blocks=4,                  # Number of residual blocks per resolution.
                 attn_resolutions=(16,),        # List of resolutions with self-attention.
                 dropout=0.10,                  # Dropout probability of intermediate activations.
                 label_dropout=0.0,             # Dropout probability of class labels (classifier-free guidance).
                 embedding_type="positional",   # Timestep embedding type: 'positional' (DDPM++) or 'fourier' (NCSN++).
                 channel_mult_noise=1,          # Timestep embedding size: 1 for DDPM++, 2 for NCSN++.
                 encoder_type="standard",       # Encoder architecture: 'standard', 'skip' or 'residual'.
                 decoder_type="standard",       # Decoder architecture: 'standard' or 'skip'.
                 resample_filter=(1, 1)):       # Resampling filter: [1,1] (DDPM++) or [1,3,3,1] (NCSN++).
        super().__init__()
        if embedding_type not in ("positional", "fourier"):
            raise ValueError(f"SongUNet: embedding_type must be 'positional' or 'fourier', got {embedding_type!r}")
        if encoder_type not in ("standard", "skip", "residual") or decoder_type not in ("standard", "skip"):
            raise ValueError(f"SongUNet: unknown encoder_type {encoder_type!r} or decoder_type {decoder_type!r}")
        self.label_dropout = label_dropout
        emb_channels = model_channels * channel_mult_emb
        noise_channels = model_channels * channel_mult_noise
        init = dict(init_mode="xavier_uniform")
        init_zero = dict(init_mode="xavier_uniform", init_weight=1e-5)
        init_attn = dict(init_mode="xavier_uniform", init_weight=math.sqrt(0.2))
        block = dict(emb_channels=emb_channels, num_heads=1, dropout=dropout, skip_scale=math.sqrt(0.5), eps=1e-6,
                     resample_filter=resample_filter, resample_proj=True, adaptive_scale=False, init=init,
                     init_zero=init_zero, init_attn=init_attn)

        self.map_noise = PositionalEmbedding(noise_channels, endpoint=True) if embedding_type == "positional" \
            else FourierEmbedding(noise_channels)
        self.map_label = Linear(label_dim, noise_channels, **init) if label_dim else None
        self.map_augment = Linear(augment_dim, noise_channels, bias=False, **init) if augment_dim else None
        self.map_layer0 = Linear(noise_channels, emb_channels, **init)
        self.map_layer1 = Linear(emb_channels, emb_channels, **init)

        self.enc = nn.ModuleDict()
        cout = caux = in_channels
        for level, mult in enumerate(channel_mult):
            res = img_resolution >> level
            if level == 0:
                cin, cout = cout, model_channels
                self.enc[f"{res}x{res}_conv"] = Conv2d(cin, cout, 3, **init)
            else:
                self.enc[f"{res}x{res}_down"] = UNetBlock(cout, cout, down=True, **block)
                if encoder_type == "skip":
                    self.enc[f"{res}x{res}_aux_down"] = Conv2d(caux, caux, 0, down=True,
                                                               resample_filter=resample_filter)
                    self.enc[f"{res}x{res}_aux_skip"] = Conv2d(caux, cout, 1, **init)
                if encoder_type == "residual":
                    self.enc[f"{res}x{res}_aux_residual"] = Conv2d(caux, cout, 3, down=True,
                                                                   resample_filter=resample_filter,
                                                                   fused_resample=True, **init)
                    caux = cout
            for idx in range(num_blocks):
                cin, cout = cout, model_channels * mult
                self.enc[f"{res}x{res}_block{idx}"] = UNetBlock(cin, cout, attention=res in attn_resolutions, **block)
        skips = [b.out_channels for name, b in self.enc.items() if "aux" not in name]

        self.dec = nn.ModuleDict()
        for level, mult in reversed(list(enumerate(channel_mult))):
            res = img_resolution >> level
            if level == len(channel_mult) - 1:
                self.dec[f"{res}x{res}_in0"] = UNetBlock(cout, cout, attention=True, **block)
                self.dec[f"{res}x{res}_in1"] = UNetBlock(cout, cout, **block)
            else:
                self.dec[f"{res}x{res}_up"] = UNetBlock(cout, cout, up=True, **block)
            for idx in range(num_blocks + 1):
                cin, cout = cout + skips.pop(), model_channels * mult
                attn = idx == num_blocks and res in attn_resolutions
                self.dec[f"{res}x{res}_block{idx}"] = UNetBlock(cin, cout, attention=attn, **block)
            if decoder_type == "skip" or level == 0:
                if decoder_type == "skip" and level < len(channel_mult) - 1:
                    self.dec[f"{res}x{res}_aux_up"] = Conv2d(out_channels, out_channels, 0, up=True,
                                                             resample_filter=resample_filter)
                self.dec[f"{res}x{res}_aux_norm"] = GroupNorm(cout, eps=1e-6)
                self.dec[f"{res}x{res}_aux_conv"] = Conv2d(cout, out_channels, 3, **init_zero)

    def embed(self, noise_labels, class_labels=None, augment_labels=None):
        emb = self.map_noise(noise_labels)
        emb = emb.reshape(emb.shape[0], 2, -1).flip(1).reshape(*emb.shape)  # [cos, sin] -> [sin, cos]
        if self.map_label is not None:
            labels = drop_labels(class_labels, self.label_dropout, self.training)
            emb = emb + self.map_label(labels * math.sqrt(self.map_label.in_features))
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels)
        return F.silu(self.map_layer1(F.silu(self.map_layer0(emb))))

    def forward(self, x, noise_labels, class_labels=None, augment_labels=None):
        emb = self.embed(noise_labels, class_labels, augment_labels)
        skips, aux = [], x
        for name, block in self.enc.items():
            if "aux_down" in name:
                aux = block(aux)
            elif "aux_skip" in name:
                x = skips[-1] = x + block(aux)
            elif "aux_residual" in name:
                x = skips[-1] = aux = (x + block(aux)) / math.sqrt(2)
            else:
                x = block(x, emb) if isinstance(block, UNetBlock) else block(x)
                skips.append(x)
        aux = tmp = None
        for name, block in self.dec.items():
            if "aux_up" in name:
                aux = block(aux)
            elif "aux_norm" in name:
                tmp = block(x)
            elif "aux_conv" in name:
                tmp = block(F.silu(tmp))
                aux = tmp if aux is None else tmp + aux
            else:
                if x.shape[1] != block.in_channels:
                    x = torch.cat([x, skips.pop()], dim=1)
                x = block(x, emb)
        return aux


class DhariwalUNet(nn.Module):
    """The ADM U-Net of Dhariwal & Nichol 2021 as configured by EDM (edm-imagenet-64x64-cond-adm)."""

    def __init__(self,
                 img_resolution,                # Image resolution at input/output.
                 in_channels,                   # Number of color channels at input.
                 out_channels,                  # Number of color channels at output.
                 label_dim=0,                   # Number of class labels, 0 = unconditional.
                 augment_dim=0,                 # Augmentation label dimensionality, 0 = no augmentation.
                 model_channels=192,            # Base multiplier for the number of channels.
                 channel_mult=(1, 2, 3, 4),     # Per-resolution multipliers for the number of channels.
                 channel_mult_emb=4,            # Multiplier for the dimensionality of the embedding vector.
                 num_blocks=3,                  # Number of residual blocks per resolution.
                 attn_resolutions=(32, 16, 8),  # List of resolutions with self-attention.
                 dropout=0.10,                  # Dropout probability of intermediate activations.
                 label_dropout=0.0):            # Dropout probability of class labels (classifier-free guidance).
        super().__init__()
        self.label_dropout = label_dropout
        emb_channels = model_channels * channel_mult_emb
        init = dict(init_mode="kaiming_uniform", init_weight=math.sqrt(1 / 3), init_bias=math.sqrt(1 / 3))
        init_zero = dict(init_mode="kaiming_uniform", init_weight=0, init_bias=0)
        block = dict(emb_channels=emb_channels, channels_per_head=64, dropout=dropout, init=init, init_zero=init_zero)

        self.map_noise = PositionalEmbedding(model_channels)
        self.map_augment = Linear(augment_dim, model_channels, bias=False, **init_zero) if augment_dim else None
        self.map_layer0 = Linear(model_channels, emb_channels, **init)
        self.map_layer1 = Linear(emb_channels, emb_channels, **init)
        self.map_label = Linear(label_dim, emb_channels, bias=False, init_mode="kaiming_normal",
                                init_weight=math.sqrt(label_dim)) if label_dim else None

        self.enc = nn.ModuleDict()
        cout = in_channels
        for level, mult in enumerate(channel_mult):
            res = img_resolution >> level
            if level == 0:
                cin, cout = cout, model_channels * mult
                self.enc[f"{res}x{res}_conv"] = Conv2d(cin, cout, 3, **init)
            else:
                self.enc[f"{res}x{res}_down"] = UNetBlock(cout, cout, down=True, **block)
            for idx in range(num_blocks):
                cin, cout = cout, model_channels * mult
                self.enc[f"{res}x{res}_block{idx}"] = UNetBlock(cin, cout, attention=res in attn_resolutions, **block)
        skips = [b.out_channels for b in self.enc.values()]

        self.dec = nn.ModuleDict()
        for level, mult in reversed(list(enumerate(channel_mult))):
            res = img_resolution >> level
            if level == len(channel_mult) - 1:
                self.dec[f"{res}x{res}_in0"] = UNetBlock(cout, cout, attention=True, **block)
                self.dec[f"{res}x{res}_in1"] = UNetBlock(cout, cout, **block)
            else:
                self.dec[f"{res}x{res}_up"] = UNetBlock(cout, cout, up=True, **block)
            for idx in range(num_blocks + 1):
                cin, cout = cout + skips.pop(), model_channels * mult
                self.dec[f"{res}x{res}_block{idx}"] = UNetBlock(cin, cout, attention=res in attn_resolutions, **block)
        self.out_norm = GroupNorm(cout)
        self.out_conv = Conv2d(cout, out_channels, 3, **init_zero)

    def forward(self, x, noise_labels, class_labels=None, augment_labels=None):
        emb = self.map_noise(noise_labels)
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels)
        emb = self.map_layer1(F.silu(self.map_layer0(emb)))
        if self.map_label is not None:
            emb = emb + self.map_label(drop_labels(class_labels, self.label_dropout, self.training))
        emb = F.silu(emb)
        skips = []
        for block in self.enc.values():
            x = block(x, emb) if isinstance(block, UNetBlock) else block(x)
            skips.append(x)
        for block in self.dec.values():
            if x.shape[1] != block.in_channels:
                x = torch.cat([x, skips.pop()], dim=1)
            x = block(x, emb)
        return self.out_conv(F.silu(self.out_norm(x)))


class EDMPrecond(nn.Module):
    """D(x; σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x, ¼ ln σ), with the scalings done by aid_ext's fused ops."""

    def __init__(self,
                 img_resolution,                # Image resolution.
                 img_channels,                  # Number of color channels.
                 label_dim=0,                   # Number of class labels, 0 = unconditional.
                 use_fp16=False,                # Execute the underlying model at FP16 precision (CUDA only)?
                 sigma_min=0.0,                 # Minimum supported noise level.
                 sigma_max=float("inf"),        # Maximum supported noise level.
                 sigma_data=0.5,                # Expected standard deviation of the training data.
                 model_type="SongUNet",         # Class name of the underlying model.
                 **model_kwargs):               # Keyword arguments for the underlying model.
        super().__init__()
        self.init_kwargs = dict(img_resolution=img_resolution, img_channels=img_channels, label_dim=label_dim,
                                use_fp16=use_fp16, sigma_min=sigma_min, sigma_max=sigma_max, sigma_data=sigma_data,
                                model_type=model_type, **model_kwargs)  # what checkpoints record
        if model_type not in MODEL_TYPES:
            raise ValueError(f"EDMPrecond: model_type must be one of {sorted(MODEL_TYPES)}, got {model_type!r}")
        self.img_resolution, self.img_channels, self.label_dim = img_resolution, img_channels, label_dim
        self.use_fp16, self.sigma_min, self.sigma_max, self.sigma_data = use_fp16, sigma_min, sigma_max, sigma_data
        self.model = MODEL_TYPES[model_type](img_resolution=img_resolution, in_channels=img_channels,
                                             out_channels=img_channels, label_dim=label_dim, **model_kwargs)

    def forward(self, x, sigma, class_labels=None, force_fp32=False, **model_kwargs):
        """x: [B, C, H, W] float32; sigma: [B] (or one element); returns D(x; σ) in x's dtype."""
        x = x.to(torch.float32)
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1)
        sigma = sigma.expand(x.shape[0]) if sigma.numel() == 1 else sigma
        if self.label_dim:
            class_labels = torch.zeros([x.shape[0], self.label_dim], device=x.device) if class_labels is None \
                else class_labels.to(torch.float32).reshape(-1, self.label_dim)
        dtype = torch.float16 if self.use_fp16 and not force_fp32 and x.device.type == "cuda" else torch.float32
        x_in = aid_ext.edm_scale_input(x, sigma, self.sigma_data)
        F_x = self.model(x_in.to(dtype), sigma.log() / 4, class_labels=class_labels, **model_kwargs)
        return aid_ext.edm_denoise(x, F_x.to(torch.float32), sigma, self.sigma_data)

    def round_sigma(self, sigma):
        return torch.as_tensor(sigma)


MODEL_TYPES = {"SongUNet": SongUNet, "DhariwalUNet": DhariwalUNet}
