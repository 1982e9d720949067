"""EDM2 backbones (key-compatible with NVlabs/edm2 checkpoints), autoguidance, and the latent
pipeline: Stable Diffusion VAE encode/decode with EDM2's whitening, AID in latent space."""
from .denoiser import Denoiser, one_hot
from .load import convert, load, load_edm2_pickle
from .networks import Precond, UNet

__all__ = ["Denoiser", "Precond", "UNet", "convert", "load", "load_edm2_pickle", "one_hot"]
