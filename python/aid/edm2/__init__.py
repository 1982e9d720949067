"""EDM2 backbones (key-compatible with NVlabs/edm2 checkpoints), autoguidance, and the latent
pipeline: Stable Diffusion VAE encode/decode with EDM2's whitening, AID in latent space."""
from aid.edm2.denoiser import Denoiser, one_hot
from aid.edm2.load import convert, load, load_edm2_pickle
from aid.edm2.networks import Precond, UNet

__all__ = ["Denoiser", "Precond", "UNet", "convert", "load", "load_edm2_pickle", "one_hot"]
