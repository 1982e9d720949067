"""Quick start: inpainting with the fused EDM step ops, on a problem whose answer is known.

The data is Gaussian, x0 ~ N(0, σ_data² I), so the exact EDM denoiser is a closed form,
D(x; σ) = σ_data²/(σ_data² + σ²)·x, and no network is needed. Half of every image is
known; aid.edm.sample's Heun steps with mask projection (replacement) fill the rest. The known pixels
must come back exactly, and the filled pixels approach the prior's variance σ_data² as
the step count grows (what remains at 18 steps is the solver's discretization error).
The same sampler run on aid_ext.reference (plain PyTorch) must agree with the fused ops.

    python -m aid.quickstart
"""
from __future__ import annotations

import time

import torch

import aid_ext
from aid.edm.sampler import sample
from aid_ext import reference

SIGMA_DATA = 0.5


class GaussianDenoiser:
    """The exact denoiser of x0 ~ N(0, σ_data² I) for C×R×R images, shaped like a backbone for aid.edm.sample."""

    def __init__(self, channels: int, resolution: int):
        self.img_channels, self.img_resolution = channels, resolution

    def __call__(self, x, sigma, class_labels=None):
        return SIGMA_DATA**2 / (SIGMA_DATA**2 + sigma.view(-1, 1, 1, 1) ** 2) * x


def heun_inpaint(ops, y, mask, steps: int) -> torch.Tensor:
    """Heun sampling with the known pixels projected (noised to σ_next) after every step; image i from seed i."""
    net = GaussianDenoiser(y.shape[1], y.shape[-1])
    return sample(net, range(y.shape[0]), num_steps=steps, mask=mask, y=y, ops=ops, device="cpu")


def main() -> None:
    B, C, H, W, steps = 512, 1, 16, 16, 18
    g = torch.Generator().manual_seed(0)
    y = SIGMA_DATA * torch.randn(B, C, H, W, generator=g)
    mask = torch.zeros(B, 1, H, W)
    mask[..., : W // 2] = 1  # left half known
    t0 = time.perf_counter()
    fused = heun_inpaint(aid_ext.ops, y, mask, steps)
    t1 = time.perf_counter()
    plain = heun_inpaint(reference, y, mask, steps)
    hole = fused[..., W // 2:]
    print(f"aid_ext {aid_ext.__version__} on torch {torch.__version__}, build {aid_ext.build_info()}")
    print(f"inpainted {B} images of {C}x{H}x{W}: {steps} Heun steps, NFE {2 * steps - 1}, {t1 - t0:.2f} s")
    print(f"  known pixels reproduced: max |x - y| = {(fused - y)[..., : W // 2].abs().max():.2e}")
    print(f"  hole mean {hole.mean():+.4f} (prior 0); hole variance {hole.var():.4f} (prior {SIGMA_DATA**2:.4f})")
    for n in (50, 200):
        more = heun_inpaint(aid_ext.ops, y, mask, n)[..., W // 2:]
        print(f"  hole variance with {n} Heun steps: {more.var():.4f}")
    print(f"  fused ops vs plain PyTorch reference: max |difference| = {(fused - plain).abs().max():.2e}")


if __name__ == "__main__":
    main()
