"""RePaint (Lugmayr et al. 2022) in σ form: replacement with ancestral (η = 1) steps, and
resampling: every `jump_length` steps the state is renoised back up `jump_length` levels,
`jump_n_sample − 1` extra times (RePaint's jump schedule; 250/10/10 gives 2,410 NFE)."""
from __future__ import annotations

import torch

import aid_ext
from aid.baselines.common import start


def repaint_schedule(num_steps: int, jump_length: int, jump_n_sample: int) -> list[int]:
    """The visited grid indices 0 → N, with backward jumps (RePaint's get_schedule_jump, in grid order)."""
    jumps = {k: jump_n_sample - 1 for k in range(jump_length, num_steps, jump_length)}
    path, i = [0], 0
    while i < num_steps:
        i += 1
        path.append(i)
        if jumps.get(i, 0) > 0:
            jumps[i] -= 1
            i -= jump_length
            path.append(i)
    return path


def repaint_nfe(num_steps: int, jump_length: int, jump_n_sample: int) -> int:
    """Backbone evaluations of one RePaint run: the forward moves of its schedule (undo steps cost none)."""
    path = repaint_schedule(num_steps, jump_length, jump_n_sample)
    return sum(b > a for a, b in zip(path, path[1:]))


def repaint(net, y, mask, seeds, num_steps=50, jump_length=10, jump_n_sample=10):
    run, x = start(net, y, mask, seeds, num_steps)
    eta = torch.ones(run.B, device=x.device)
    path = repaint_schedule(num_steps, jump_length, jump_n_sample)
    for a, b in zip(path[:-1], path[1:]):
        if b < a:  # undo: noise from σ_a back up to σ_b
            x = aid_ext.edm_renoise(x, run.sigma(a), run.sigma(b), run.noise())
            continue
        x = aid_ext.edm_ddim_step(x, run.denoise(x, a), run.sigma(a), run.sigma(b), eta, z=run.noise())
        x = aid_ext.mask_project(x, run.mask, run.y, run.sigma(b), run.noise())
    run.extra["schedule_length"] = len(path) - 1
    return x, run.report()
