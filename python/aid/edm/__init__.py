"""EDM backbones (key-compatible with NVlabs/edm checkpoints) and the sampler."""
from .networks import DhariwalUNet, EDMPrecond, SongUNet
from .load import DEFAULT_BACKBONE, convert, load
from .sampler import edm_sigmas, nfe, sample

__all__ = ["DEFAULT_BACKBONE", "DhariwalUNet", "EDMPrecond", "SongUNet", "convert", "edm_sigmas", "load", "nfe", "sample"]
