"""EDM backbones (key-compatible with NVlabs/edm checkpoints) and the sampler."""
from aid.edm.load import DEFAULT_BACKBONE, check_device, convert, load
from aid.edm.networks import DhariwalUNet, EDMPrecond, SongUNet
from aid.edm.sampler import edm_sigmas, nfe, sample

__all__ = ["DEFAULT_BACKBONE", "DhariwalUNet", "EDMPrecond", "SongUNet", "check_device", "convert", "edm_sigmas",
           "load", "nfe", "sample"]
