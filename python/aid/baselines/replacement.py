"""Replacement (Song et al. 2021; RePaint without resampling): after each Euler step the
known pixels are replaced by y noised to the next σ."""
from __future__ import annotations

import aid_ext
from aid.baselines.common import start


def replacement(net, y, mask, seeds, num_steps=18):
    run, x = start(net, y, mask, seeds, num_steps)
    for i in range(num_steps):
        x, _ = aid_ext.edm_euler_step(x, run.denoise(x, i), run.sigma(i), run.sigma(i + 1), mask=run.mask,
                                      y=run.y, z=run.noise())
    return x, run.report()
