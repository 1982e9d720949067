"""aid: AID (Amortized Inpainting with Diffusion) on frozen EDM/EDM2 backbones, built on aid_ext's fused ops."""
import aid_ext  # noqa: F401  (loads the ops)
from aid.guidance.sample import sample_aid

__version__ = "0.1.0"

__all__ = ["sample_aid"]
