"""DDNM (Wang et al. 2023), noiseless, in σ form: x̂0 = m⊙y + (1−m)⊙D (the null-space
correction with A = A⁺ = m⊙), then a DDIM(η) step from x̂0. Defaults: 100 steps (the paper's) and
η = 1.0, re-tuned on EDM's σ grid (the paper's 0.85 was 1.5 dB worse in hole PSNR on the validation
split: benchmarks/tune_baselines.py, docs/notes/results-notebook.md)."""
from __future__ import annotations

import torch

import aid_ext
from aid.baselines.common import start


def ddnm(net, y, mask, seeds, num_steps=100, eta=1.0):
    run, x = start(net, y, mask, seeds, num_steps)
    eta_t = torch.full((run.B,), float(eta), device=x.device)
    for i in range(num_steps):
        x = aid_ext.edm_ddim_step(x, run.denoise(x, i), run.sigma(i), run.sigma(i + 1), eta_t, z=run.noise(),
                                  mask=run.mask, y=run.y)
    return run.paste(x), run.report()
