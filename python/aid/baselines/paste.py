"""Unguided EDM sampling, then the known pixels pasted over the result (the floor every method must beat)."""
from __future__ import annotations

import aid_ext
from aid.baselines.common import start


def paste(net, y, mask, seeds, num_steps=18):
    run, x = start(net, y, mask, seeds, num_steps)
    for i in range(num_steps):
        x, _ = aid_ext.edm_euler_step(x, run.denoise(x, i), run.sigma(i), run.sigma(i + 1))
    return run.paste(x), run.report()
