"""aid: AID (Amortized Inpainting with Diffusion) on frozen EDM/EDM2 backbones, built on aid_ext's fused ops."""
import aid_ext  # noqa: F401  (loads the ops)

__version__ = "0.1.0"
