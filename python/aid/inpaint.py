"""`aid inpaint`: user images and masks → inpainted PNGs, with any method on any EDM backbone.
Every check names the argument at fault and says what was expected."""
from __future__ import annotations

import os
import zipfile
from functools import partial

import torch
from tqdm.auto import tqdm

from aid.baselines import METHODS, defaults
from aid.baselines.deft import deft, h_transform
from aid.core.checkpoint import read_metadata
from aid.core.common import device_of
from aid.data.datasets import _decode, image_dataset
from aid.data.images import grid, masked_input, save_png
from aid.data.masks import mask_from_png, masks
from aid.edm import DEFAULT_BACKBONE, load
from aid.guidance.actor_critic import ACConfig
from aid.guidance.sample import DEFAULT_GUIDANCE, load_actor, sample_aid


def read_images(paths: list[str]) -> tuple[torch.Tensor, list[str]]:
    """(images [N, C, H, W] in [-1, 1], output names): image files (named after them), or one folder or
    EDM zip (named by index, in the sorted order aid.data.datasets.image_dataset reads them)."""
    for p in paths:
        if not os.path.exists(p):
            raise FileNotFoundError(f"IMAGES: no such file or folder: {p}")
    if len(paths) == 1 and (os.path.isdir(paths[0]) or zipfile.is_zipfile(paths[0])):
        x, _ = image_dataset(paths[0])
        return x, [f"{i:05d}.png" for i in range(len(x))]
    if any(os.path.isdir(p) for p in paths):
        raise ValueError("IMAGES: give image files, or a single folder or zip")
    arrays = []
    for p in paths:
        with open(p, "rb") as f:
            arrays.append(torch.from_numpy(_decode(f.read(), p).copy()))
    for p, a in zip(paths, arrays):
        if a.shape != arrays[0].shape:
            raise ValueError(f"IMAGES: {p} is {_size(a)}, {paths[0]} is {_size(arrays[0])}; all must be the same size")
    names = [os.path.splitext(os.path.basename(p))[0] + ".png" for p in paths]
    if len(set(names)) < len(names):
        raise ValueError("IMAGES: two images have the same file name; their outputs would overwrite each other")
    return torch.stack(arrays).float().div(127.5).sub(1), names


def _size(t: torch.Tensor) -> str:
    return f"{t.shape[-1]}×{t.shape[-2]} with {t.shape[-3]} channel(s)"


def read_masks(a, n: int, res: int) -> torch.Tensor:
    """[n, 1, res, res] masks (1 = known) from --mask files (one, or one per image) or --mask-kind, each with
    at least one known pixel and one hole."""
    if a.mask_kind:
        m, names = masks(a.mask_kind, n, res, a.mask_seed), [f"--mask-kind {a.mask_kind} #{i}" for i in range(n)]
    else:
        if len(a.mask) not in (1, n):
            raise ValueError(f"--mask: give one mask for all images or one per image: {len(a.mask)} masks for "
                             f"{n} images")
        for p in a.mask:
            if not os.path.isfile(p):
                raise FileNotFoundError(f"--mask: no such file: {p}")
        m = [mask_from_png(p, known_is_white=not a.hole_white) for p in a.mask]
        for p, mi in zip(a.mask, m):
            if mi.shape[-2:] != (res, res):
                raise ValueError(f"--mask: {p} is {mi.shape[-1]}×{mi.shape[-2]}, the images are {res}×{res}")
        m, names = torch.cat(m), [f"--mask {p}" for p in a.mask]
    for name, mi in zip(names, m):
        if mi.max() == 0:
            raise ValueError(f"{name} is all hole: nothing is known to inpaint from (white = known"
                             f"{'' if a.hole_white else '; pass --hole-white if white marks the hole'})")
        if mi.min() == 1:
            raise ValueError(f"{name} has no hole: nothing to inpaint")
    return m.expand(n, -1, -1, -1) if len(m) == 1 else m


def load_sampler(method: str, net, module: str | None = None):
    """method's sampler, fn(net, y, mask, seeds, num_steps, **hyperparameters) -> (x, report): a baseline of
    aid.baselines, or DEFT or AID with its trained module (module: h.safetensors from train_deft, or
    actor.safetensors from aid.guidance.train) loaded once onto net's device. AID's has no defaults in its
    signature: its num_steps and solver should be those of training (training_settings)."""
    if method == "deft":
        return partial(deft, h=h_transform(module, net))
    if method != "aid":
        return METHODS[method]
    actor = load_actor(module, device_of(net))

    def aid(net, y, mask, seeds, num_steps, **kwargs):
        return sample_aid(net, actor, y, mask, seeds, num_steps=num_steps, **kwargs)
    return aid


def training_settings(path: str) -> tuple[int, str]:
    """(K, solver) of an actor.safetensors' training, from its metadata (ac_config). One trained over several
    K (num_steps_choices) gives ACConfig.num_steps (9) if it is among them, else the largest. A module
    without that metadata gives ACConfig's defaults."""
    _, _, extra = read_metadata(path)
    cfg, choices = extra.get("ac_config") or {}, extra.get("num_steps_choices")
    if choices:
        steps = ACConfig.num_steps if ACConfig.num_steps in choices else max(choices)
    else:
        steps = cfg.get("num_steps", ACConfig.num_steps)
    return int(steps), cfg.get("solver", ACConfig.solver)


def sampler(a, net):
    """sample(y, mask, seeds) -> (x, report) for --method, with --steps, --solver, --guidance and
    --guidance-scale (AID's defaults: those of its training, training_settings)."""
    if a.solver and a.method not in ("aid", "deft"):
        raise ValueError(f"--solver: {a.method} has its own update rule; --solver applies to aid and deft only")
    if a.method == "deft" and not a.guidance:
        raise ValueError("--method deft needs --guidance PATH, a DEFT h-transform (h.safetensors from "
                         "`python -m aid.baselines.deft --run-dir RUN --iters N`)")
    if a.guidance and a.method not in ("aid", "deft"):
        raise ValueError(f"--guidance: {a.method} uses no trained module; it applies to aid and deft only")
    if a.steps is not None and a.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {a.steps}")
    if a.guidance_scale is not None and a.method != "aid":
        raise ValueError(f"--guidance-scale: applies to aid only, not {a.method}")
    if a.guidance_scale is not None and not a.guidance_scale >= 0:
        raise ValueError(f"--guidance-scale must be >= 0, got {a.guidance_scale}")
    path = (a.guidance or default_guidance(a)) if a.method == "aid" else a.guidance
    fn = load_sampler(a.method, net, path)
    if a.method == "aid":
        steps, solver = training_settings(path)
        kwargs = dict(num_steps=a.steps or steps, solver=a.solver or solver,
                      guidance_scale=1.0 if a.guidance_scale is None else a.guidance_scale)
    else:
        kwargs = dict(num_steps=a.steps or defaults(fn)["num_steps"], **({"solver": a.solver} if a.solver else {}))
    return partial(fn, net, **kwargs)


def default_guidance(a) -> str:
    if a.backbone:
        raise ValueError("--method aid with --backbone needs --guidance PATH, a guidance module trained for that "
                         "backbone (`aid train --backbone ...`); the bundled one belongs to the bundled backbone")
    if not os.path.exists(DEFAULT_GUIDANCE):
        raise FileNotFoundError(f"--method aid: no bundled guidance module yet ({DEFAULT_GUIDANCE}); pass "
                                "--guidance PATH (train one with `aid train`), or choose a baseline with --method")
    return DEFAULT_GUIDANCE


def inpaint(a, device: torch.device) -> None:
    """The whole command: read, check, sample in batches with a progress bar, write PNGs (and grid.png)."""
    if a.batch < 1:
        raise ValueError(f"--batch must be >= 1, got {a.batch}")
    x0, names = read_images(a.images)
    net = load(a.backbone or DEFAULT_BACKBONE, device)
    C, res = net.img_channels, net.img_resolution
    if x0.shape[1] != C:
        raise ValueError(f"IMAGES: {a.images[0]} has {x0.shape[1]} channel(s); the backbone makes {C}-channel images")
    if x0.shape[-2:] != (res, res):
        raise ValueError(f"IMAGES: {a.images[0]} is {x0.shape[-1]}×{x0.shape[-2]}; the backbone makes {res}×{res} "
                         "images (resize or crop them first)")
    mask = read_masks(a, len(x0), res)
    run = sampler(a, net)
    outs = []
    for i in tqdm(range(0, len(x0), a.batch), desc=f"aid inpaint ({a.method})", unit="batch", dynamic_ncols=True):
        m = mask[i:i + a.batch].to(device)
        y = x0[i:i + a.batch].to(device) * m  # the methods never see the hole
        x, _ = run(y, m, list(range(a.seed + i, a.seed + i + len(y))))
        outs.append(x.float().cpu().clamp(-1, 1))
    x = torch.cat(outs)
    for name, xi in zip(names, x):
        save_png(xi, os.path.join(a.out, name))
    print(f"wrote {len(x)} inpainted image(s) to {a.out}")
    if a.grid:
        rows = [[masked_input(g, m), xi.expand(3, -1, -1), g.expand(3, -1, -1)] for g, m, xi in zip(x0, mask, x)]
        save_png(grid(torch.stack([im for row in rows for im in row]), nrow=3), os.path.join(a.out, "grid.png"),
                 scale=max(1, 128 // res))
        print(f"wrote {os.path.join(a.out, 'grid.png')}: masked input | output | input, one image per row")
