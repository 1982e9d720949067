"""One cell of the speed–quality benchmark (aid.bench.run): the cost rule of aid.bench.settings.RULES (cost, and
steps_for, which turns a target cost into num_steps), the settings a method runs at (points), running a sampler on
a range of images (run_cell) and the quality numbers of a cell's outputs (cell_metrics)."""
from __future__ import annotations

import time

import torch

from aid.baselines import defaults, repaint_nfe
from aid.core.common import device_of
from aid.eval.metrics import fmnist_distances, hole_mse, psnr, seam_ratio, ssim
from aid.methods import base_method

VJP_PER_STEP = {"dps", "pigdm"}
RES = 32  # Fashion-MNIST padded to 32×32: the FD_fmnist classifier's input


def cost(name: str, num_steps: int, hp: dict) -> int:
    """NFE + VJP per image of one run, as the method's report counts it (a variant's: its method's, times its
    samples: aid.methods.mean_of_samples)."""
    return hp.get("samples", 1) * cost_of_one(base_method(name), num_steps, hp)


def cost_of_one(name: str, num_steps: int, hp: dict) -> int:
    """NFE + VJP per image of one sample of method name."""
    if name == "repaint":
        return repaint_nfe(num_steps, hp["jump_length"], hp["jump_n_sample"])
    if name == "ding":  # two denoiser calls per step, one on the last (x̂ = D(x; σ_{N−1}))
        return 2 * num_steps - 1
    if name == "daps":  # annealing levels × probability-flow ODE steps per level
        return num_steps * hp["ode_steps"]
    return num_steps * (2 if name in VJP_PER_STEP else 1)


def steps_for(name: str, target: int, hp: dict) -> int:
    """The smallest num_steps whose cost is nearest to the target (cost is nondecreasing in num_steps)."""
    n = 1
    while cost(name, n + 1, hp) <= target:
        n += 1
    return n + 1 if abs(cost(name, n + 1, hp) - target) < abs(cost(name, n, hp) - target) else n


def points(name: str, fn, targets: list[int], with_default: bool) -> list[dict]:
    """The settings one method runs at: [{num_steps, targets, default}], by num_steps."""
    hp = defaults(fn)
    by_steps: dict[int, list[int]] = {}
    for t in targets:
        by_steps.setdefault(steps_for(name, t, hp), []).append(t)
    default = hp.get("num_steps") if with_default else None
    if default is not None:
        by_steps.setdefault(default, [])
    return [dict(num_steps=n, targets=by_steps[n], default=n == default) for n in sorted(by_steps)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_cell(sampler, net, gt, mask, seeds, num_steps: int, batch: int):
    """(outputs [n, C, H, W] on the CPU, the first batch's report, the sampler's seconds in total)."""
    device, outs, seconds, report = device_of(net), [], 0.0, None
    for i in range(0, len(gt), batch):
        m = mask[i:i + batch].to(device)
        y = gt[i:i + batch].to(device) * m
        sync(device)
        t = time.perf_counter()
        with torch.no_grad():
            x, rep = sampler(net, y, m, seeds[i:i + batch], num_steps=num_steps)
        sync(device)
        seconds += time.perf_counter() - t
        outs.append(x.float().cpu())
        report = report or rep
    return torch.cat(outs), report, seconds


def cell_metrics(x, gt, mask, fd_min: int) -> dict:
    """The quality numbers of one cell (see RULES, aid.bench.settings). Non-finite outputs are counted and
    left in (their metrics come out NaN), and FD/KD_fmnist is skipped for such a cell."""
    bad = int((~torch.isfinite(x)).flatten(1).any(1).sum())
    out = {"known_max_abs_err": float(torch.where(mask.bool(), x - gt, 0).abs().max()), "non_finite_images": bad}
    x = x.clamp(-1, 1)
    per_image = {"hole_psnr": psnr(x, gt, 1 - mask), "psnr": psnr(x, gt), "ssim": ssim(x, gt),
                 "hole_mse": hole_mse(x, gt, mask)}
    for k, v in per_image.items():
        out[k], out[f"{k}_std"] = float(v.double().mean()), float(v.double().std())
    out["seam"], out["seam_se"] = seam_ratio(x, gt, mask)
    why = f"{bad} non-finite images" if bad else f"{len(x)} < {fd_min} images" if len(x) < fd_min else None
    out.update(fmnist_distances(x, gt) if why is None else
               dict.fromkeys(["fd_fmnist", "kd_fmnist", "kd_fmnist_std"], f"skipped ({why})"))
    return out
