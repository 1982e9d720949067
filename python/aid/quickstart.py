"""Quick start: inpainting with the fused EDM step ops, on a problem whose answer is known.

The data is Gaussian, x0 ~ N(0, σ_data² I), so the exact EDM denoiser is a closed form,
D(x; σ) = σ_data²/(σ_data² + σ²)·x, and no network is needed. Half of every image is
known; Heun steps with mask projection (replacement) fill the rest. The known pixels
must come back exactly, and the filled pixels approach the prior's variance σ_data² as
the step count grows (what remains at 18 steps is the solver's discretization error).
The same loop run on aid_ext.reference (plain PyTorch) must agree with the fused ops.

    python -m aid.quickstart
"""
from __future__ import annotations

import time

import torch

import aid_ext
from aid.edm.sampler import edm_sigmas
from aid_ext import reference

SIGMA_DATA = 0.5


def gaussian_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return SIGMA_DATA**2 / (SIGMA_DATA**2 + sigma.view(-1, 1, 1, 1) ** 2) * x


def heun_inpaint(ops, y, mask, steps: int, generator: torch.Generator) -> torch.Tensor:
    """Heun sampling with the known pixels projected (noised to σ_next) after every step."""
    B = y.shape[0]
    sigmas = edm_sigmas(steps, dtype=y.dtype)
    x = sigmas[0] * torch.randn(y.shape, generator=generator, dtype=y.dtype)
    for i in range(steps):
        s, sn = sigmas[i].expand(B), sigmas[i + 1].expand(B)
        z = torch.randn(y.shape, generator=generator, dtype=y.dtype)
        x_pred, d = ops.edm_euler_step(x, gaussian_denoiser(x, s), s, sn)
        if i < steps - 1:  # Heun's correction, skipped on the last step (σ_next = 0)
            x = ops.edm_heun_correct(x, d, x_pred, gaussian_denoiser(x_pred, sn), s, sn, mask=mask, y=y, z=z)
        else:
            x = ops.mask_project(x_pred, mask, y, sn)
    return x


def main() -> None:
    B, C, H, W, steps = 512, 1, 16, 16, 18
    g = torch.Generator().manual_seed(0)
    y = SIGMA_DATA * torch.randn(B, C, H, W, generator=g)
    mask = torch.zeros(B, 1, H, W)
    mask[..., : W // 2] = 1  # left half known
    t0 = time.perf_counter()
    fused = heun_inpaint(aid_ext.ops, y, mask, steps, torch.Generator().manual_seed(1))
    t1 = time.perf_counter()
    plain = heun_inpaint(reference, y, mask, steps, torch.Generator().manual_seed(1))
    hole = fused[..., W // 2:]
    print(f"aid_ext {aid_ext.__version__} on torch {torch.__version__}, build {aid_ext.build_info()}")
    print(f"inpainted {B} images of {C}x{H}x{W}: {steps} Heun steps, NFE {2 * steps - 1}, {t1 - t0:.2f} s")
    print(f"  known pixels reproduced: max |x - y| = {(fused - y)[..., : W // 2].abs().max():.2e}")
    print(f"  hole mean {hole.mean():+.4f} (prior 0); hole variance {hole.var():.4f} (prior {SIGMA_DATA**2:.4f})")
    for n in (50, 200):
        more = heun_inpaint(aid_ext.ops, y, mask, n, torch.Generator().manual_seed(1))[..., W // 2:]
        print(f"  hole variance with {n} Heun steps: {more.var():.4f}")
    print(f"  fused ops vs plain PyTorch reference: max |difference| = {(fused - plain).abs().max():.2e}")


if __name__ == "__main__":
    main()
