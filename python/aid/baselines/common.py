"""What every baseline sampler shares: the call signature, the σ grid, per-image noise,
the final paste of the known pixels, and the cost report (NFE counts every backbone
forward; a vector–Jacobian product through the backbone is counted separately as a VJP;
both are network evaluations: backbone calls × the backbone's `evals_per_call`, 2 for an
autoguided aid.edm2.Denoiser, 1 when it has none)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

import aid_ext
from aid.core.common import device_of, generators, known_part, randn_per_sample
from aid.edm.sampler import edm_sigmas


@dataclass
class Run:
    """The state a baseline loop works on, built by start()."""
    net: object
    y: torch.Tensor
    mask: torch.Tensor
    sigmas: torch.Tensor          # [N + 1], σ_N = 0
    gens: list
    nfe: int = 0                  # backbone calls; report() converts both to network evaluations
    vjp: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def B(self) -> int:
        return self.y.shape[0]

    def noise(self) -> torch.Tensor:
        return randn_per_sample(self.gens, tuple(self.y.shape[1:]), self.y.device)

    def sigma(self, i: int) -> torch.Tensor:
        """σ_i as a [B] tensor (the ops' per-sample convention)."""
        return self.sigmas[i].expand(self.B)

    def denoise(self, x: torch.Tensor, i: int) -> torch.Tensor:
        self.nfe += 1
        return self.net(x, self.sigma(i))

    def paste(self, x: torch.Tensor) -> torch.Tensor:
        """x̂ = m⊙y + (1−m)⊙x (σ = 0 projection)."""
        return aid_ext.mask_project(x, self.mask, self.y, torch.zeros_like(self.sigma(0)))

    def report(self) -> dict:
        """nfe and vjp count backbone calls (what the loops add up); the report counts network evaluations."""
        k = getattr(self.net, "evals_per_call", 1)
        return {"nfe": k * self.nfe, "vjp": k * self.vjp, **self.extra}


def start(net, y: torch.Tensor, mask: torch.Tensor, seeds, num_steps: int, sigma_min=0.002, sigma_max=80.0,
          rho=7.0) -> tuple[Run, torch.Tensor]:
    """Check the inputs, build the grid and generators, and draw x_0 = σ_0·ε per image. Run.y is y's known part
    (aid.core.common.known_part): only m⊙y is read, whatever the hole of y holds."""
    if y.dim() != 4 or mask.dim() != 4 or mask.shape[0] != y.shape[0] or mask.shape[2:] != y.shape[2:]:
        raise ValueError(f"baseline: y must be [B, C, H, W] and mask [B, 1, H, W]; got {list(y.shape)}, "
                         f"{list(mask.shape)}")
    if y.shape[0] == 0:
        raise ValueError(f"baseline: need at least one image; y is {list(y.shape)}")
    if len(seeds) != y.shape[0]:
        raise ValueError(f"baseline: one seed per image: {len(seeds)} seeds for {y.shape[0]} images")
    device = device_of(net)
    mask = mask.to(device, torch.float32)
    y = known_part(y.to(device, torch.float32), mask)
    run = Run(net, y, mask, edm_sigmas(num_steps, sigma_min, sigma_max, rho, device, torch.float32),
              generators(seeds, device))
    return run, run.sigmas[0] * run.noise()
