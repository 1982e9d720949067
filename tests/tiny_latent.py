"""Tiny random latent-space models, shared by tests/edm2/ and tests/guidance/ (`from tiny_latent import ...`): EDM2
nets saved as this project's safetensors (a class-conditional one, an unconditional one, a guide), an
AutoencoderKL with SD-VAE's layout (4 latent channels, 8× downsampling) saved to a folder, and a folder of 64×64
RGB images with a dataset.json of labels. Nothing is downloaded; diffusers is needed for the VAE."""
import json

import numpy as np
import torch

from aid.core.checkpoint import save_module
from aid.edm2 import Precond

RES = 64  # pixels; the VAE downsamples by 8, as SD's does, to the 8×8 latents of the tiny EDM2 nets
LABEL_DIM = 10


def tiny_edm2(seed: int, label_dim: int = LABEL_DIM) -> Precond:
    """A random EDM2 net on 8×8×4 latents; gains at 0.5 so that the zero-initialised gains do not make it constant."""
    torch.manual_seed(seed)
    net = Precond(8, 4, label_dim, model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4],
                  channels_per_head=8, logvar_channels=8)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("gain"):
                p.fill_(0.5)
    return net


def tiny_vae():
    from diffusers import AutoencoderKL
    torch.manual_seed(0)
    return AutoencoderKL(block_out_channels=(8, 8, 8, 8), down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=4,
                         layers_per_block=1, sample_size=RES)


def write_latent_files(d) -> dict:
    """Paths under the folder d (a pathlib.Path): vae (folder), cond, uncond, guide (EDM2 safetensors), images
    (a folder of 4 images, labels 0, 3, 6, 9)."""
    from PIL import Image
    tiny_vae().save_pretrained(d / "sd-vae")
    paths = {"vae": str(d / "sd-vae")}
    for name, seed, label_dim in (("cond", 0, LABEL_DIM), ("uncond", 1, 0), ("guide", 2, 0)):
        net = tiny_edm2(seed, label_dim)
        paths[name] = str(d / f"{name}.safetensors")
        save_module(net, paths[name], "EDM2Precond", net.init_kwargs)
    (d / "images").mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (RES, RES, 3), dtype=np.uint8)).save(d / "images" / f"{i}.png")
    (d / "images" / "dataset.json").write_text(json.dumps({"labels": [[f"{i}.png", i * 3] for i in range(4)]}))
    paths["images"] = str(d / "images")
    return paths
