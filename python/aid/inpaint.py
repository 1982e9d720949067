"""What `aid inpaint` does (inpaint; aid.cli only parses its flags): user images and masks → inpainted PNGs,
with any method on any EDM backbone. Every check names the argument at fault, as the flag of `aid inpaint`
that sets it (steps: --steps), and says what was expected."""
from __future__ import annotations

import math
import os
import sys
import time
import zipfile
from functools import partial

import torch
from tqdm.auto import tqdm

from aid.baselines import defaults
from aid.core.checkpoint import writable_dir
from aid.data.datasets import _decode, image_dataset
from aid.data.images import grid as make_grid
from aid.data.images import masked_input, save_png
from aid.data.masks import mask_from_png, masks
from aid.edm import DEFAULT_BACKBONE, load
from aid.edm2.options import labels_for
from aid.guidance.sample import BUNDLED_GUIDANCE
from aid.latent import latent_method, load_latent
from aid.methods import averages, base_method, load_sampler, module_key, training_settings

MANY_STEPS = 1000  # --steps above this gets a warning: every method's default is at most a few hundred
GRID = "grid.png"


def read_images(paths: list[str]) -> tuple[torch.Tensor, list[str], torch.Tensor | None]:
    """(images [N, C, H, W] in [-1, 1], output names, class labels [N] or None): image files (named after them,
    no labels), or one folder or EDM zip (named by index, in the sorted order aid.data.datasets.image_dataset
    reads them; labels from its dataset.json, if any)."""
    for p in paths:
        if not os.path.exists(p):
            raise FileNotFoundError(f"IMAGES: no such file or folder: {p}")
    if len(paths) == 1 and (os.path.isdir(paths[0]) or zipfile.is_zipfile(paths[0])):
        x, labels = image_dataset(paths[0])
        return x, [f"{i:05d}.png" for i in range(len(x))], labels
    if any(os.path.isdir(p) for p in paths):
        raise ValueError("IMAGES: give image files, or a single folder or zip")
    arrays = []
    for p in paths:
        with open(p, "rb") as f:
            try:
                arrays.append(torch.from_numpy(_decode(f.read(), p).copy()))
            except ValueError as e:
                raise ValueError(f"IMAGES: {e}") from None
    for p, a in zip(paths, arrays):
        if a.shape != arrays[0].shape:
            raise ValueError(f"IMAGES: {p} is {_size(a)}, {paths[0]} is {_size(arrays[0])}; all must be the same size")
    names = [os.path.splitext(os.path.basename(p))[0] + ".png" for p in paths]
    if len(set(names)) < len(names):
        raise ValueError("IMAGES: two images have the same file name; their outputs would overwrite each other")
    return torch.stack(arrays).float().div(127.5).sub(1), names, None


def _size(t: torch.Tensor) -> str:
    return f"{t.shape[-1]}×{t.shape[-2]} with {t.shape[-3]} channel(s)"


def read_masks(n: int, res: int, *, mask: list[str] | None = None, mask_kind: str | None = None, mask_seed: int = 0,
               hole_white: bool = False) -> torch.Tensor:
    """[n, 1, res, res] masks (1 = known) from mask files (one, or one per image; white = known, or hole with
    hole_white) or generated ones (aid.data.masks kind mask_kind with mask_seed), each with at least one known
    pixel and one hole."""
    if (mask is None) == (mask_kind is None):
        raise ValueError("give mask files (--mask) or a generated kind (--mask-kind), one of the two")
    if mask_kind:
        m, names = masks(mask_kind, n, res, mask_seed), [f"--mask-kind {mask_kind} #{i}" for i in range(n)]
    else:
        if len(mask) not in (1, n):
            raise ValueError(f"--mask: give one mask for all images or one per image: {len(mask)} masks for "
                             f"{n} images")
        for p in mask:
            if not os.path.isfile(p):
                raise FileNotFoundError(f"--mask: no such file: {p}")
        try:
            m = [mask_from_png(p, known_is_white=not hole_white) for p in mask]
        except ValueError as e:
            raise ValueError(f"--mask: {e}") from None
        for p, mi in zip(mask, m):
            if mi.shape[-2:] != (res, res):
                raise ValueError(f"--mask: {p} is {mi.shape[-1]}×{mi.shape[-2]}, the images are {res}×{res}")
        m, names = torch.cat(m), [f"--mask {p}" for p in mask]
    for name, mi in zip(names, m):
        if mi.max() == 0:
            raise ValueError(f"{name} is all hole: nothing is known to inpaint from (white = known"
                             f"{'' if hole_white else '; pass --hole-white if white marks the hole'})")
        if mi.min() == 1:
            raise ValueError(f"{name} has no hole: nothing to inpaint")
    return m.expand(n, -1, -1, -1) if len(m) == 1 else m


def sampler(net, method: str = "aid", *, backbone: str | None = None, guidance: str | None = None,
            steps: int | None = None, solver: str | None = None, guidance_scale: float | None = None,
            codec=None, labels=None):
    """sample(y, mask, seeds) -> (x, report) for method on net, with its trained module guidance (aid and deft),
    steps, solver (aid and deft) and guidance_scale (aid); None takes the default: AID's module is the bundled one
    when net is the bundled backbone (backbone None; else net's file), its steps and solver those of its training
    (training_settings); a baseline's num_steps is its own. A variant (aid.methods.VARIANTS, e.g. aid_paste)
    takes its method's options. With codec (an aid.edm2.vae.LatentCodec) the method runs on net's latents of the
    pixel images (aid.latent.latent_method; labels(seeds): the class indices)."""
    kind = base_method(method)
    if solver and kind not in ("aid", "deft"):
        raise ValueError(f"--solver: {method} has its own update rule; --solver applies to aid and deft only")
    if kind == "deft" and not guidance:
        raise ValueError("--method deft needs --guidance PATH, a DEFT h-transform (h.safetensors from "
                         "`python -m aid.baselines.deft --run-dir RUN --iters N`)")
    if guidance and kind not in ("aid", "deft"):
        raise ValueError(f"--guidance: {method} uses no trained module; it applies to aid and deft only")
    if steps is not None and steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    if guidance_scale is not None and kind != "aid":
        raise ValueError(f"--guidance-scale: applies to aid only, not {method}")
    if guidance_scale is not None and not math.isfinite(guidance_scale):
        raise ValueError(f"--guidance-scale must be finite, got {guidance_scale}")
    if guidance_scale is not None and not guidance_scale >= 0:
        raise ValueError(f"--guidance-scale must be >= 0, got {guidance_scale}")
    path = (guidance or default_guidance(backbone, method)) if kind == "aid" else guidance
    fn = load_sampler(method, net, path)
    if codec is not None:
        fn = latent_method(kind, fn, codec, labels)
    if kind == "aid":
        trained_steps, trained_solver = training_settings(path)
        kwargs = dict(num_steps=steps or trained_steps, solver=solver or trained_solver,  # no scale: the variant's
                      **({} if guidance_scale is None else {"guidance_scale": guidance_scale}))
    else:
        kwargs = dict(num_steps=steps or defaults(fn)["num_steps"], **({"solver": solver} if solver else {}))
    run = partial(fn, net, **kwargs)
    run.module = path  # the trained module's file (aid, deft), for the error on a non-finite result
    return run


def likely_causes(method: str, backbone: str | None, module: str | None, guidance_scale: float | None) -> str:
    """What can make method's result non-finite, most likely first: the scale (aid), the trained module, the
    backbone; named by their flags and files."""
    causes, method = [], base_method(method)
    if method == "aid" and guidance_scale is not None and guidance_scale > 1:
        causes.append(f"--guidance-scale {guidance_scale:g} (too large: 1 is the trained field)")
    if module:
        causes.append(f"the {'guidance module' if method == 'aid' else 'h-transform'} {module} (trained for another "
                      "backbone, or diverged)")
    causes.append(f"the backbone {backbone or DEFAULT_BACKBONE} (it returns NaN or inf)")
    return ", or ".join(causes)


def default_guidance(backbone: str | None, method: str = "aid") -> str:
    """The bundled guidance module of AID's setting method (aid, its fidelity setting; aid_sharp), which belongs to
    the bundled backbone (backbone None)."""
    if backbone:
        raise ValueError(f"--method {method} with --backbone needs --guidance PATH, a guidance module trained for "
                         "that backbone (`aid train --backbone ...`); the bundled ones belong to the bundled backbone")
    path = BUNDLED_GUIDANCE[module_key(method)]
    if not os.path.exists(path):
        raise FileNotFoundError(f"--method {method}: no bundled guidance module yet ({path}); pass "
                                "--guidance PATH (train one with `aid train`), or choose a baseline with --method")
    return path


def inpaint(images: list[str], out: str, *, mask: list[str] | None = None, mask_kind: str | None = None,
            mask_seed: int = 0, hole_white: bool = False, method: str = "aid", backbone: str | None = None,
            guidance: str | None = None, steps: int | None = None, solver: str | None = None,
            guidance_scale: float | None = None, seed: int = 0, batch: int = 64,
            device: torch.device | str = "cpu", grid: bool = False, vae: str | None = None, guide: str | None = None,
            guidance_weight: float | None = None, class_labels: str | int | None = None) -> None:
    """Inpaint image files (or one folder or EDM zip: read_images) with masks (read_masks: mask files, or
    mask_kind) by method (sampler; backbone None: the bundled one) in batches of batch images, image i with
    seed seed + i, with a progress bar; write one PNG per image to out, and with grid out/grid.png
    (masked input | output | input, one image per row). With vae (a VAE folder) backbone is an EDM2 latent net,
    autoguided by guide with guidance_weight, given each image's class_labels ("data": its dataset.json's, or
    one index; aid.edm2.options), and every method runs on the latents (aid.latent). A bad argument is a
    ValueError naming it, found before any compute (out too: writable_dir); a result that is not finite is a
    FloatingPointError naming the likely causes (likely_causes), with nothing written; every PNG is written
    atomically (aid.data.images.save_png)."""
    if batch < 1:
        raise ValueError(f"--batch must be >= 1, got {batch}")
    writable_dir(out, "--out")
    device = torch.device(device)
    x0, names, data_labels = read_images(images)
    if grid and GRID in names:
        raise ValueError(f"--grid: an input is named {GRID}, and the grid ({os.path.join(out, GRID)}) would "
                         f"overwrite its output; rename that image or leave out --grid")
    codec, labels = None, None
    if vae:
        if averages(method):
            raise ValueError(f"--method {method} averages pixel images; with --vae the methods run on latents")
        if not backbone:
            raise ValueError("--vae needs --backbone, an EDM2 latent net (.pkl, e.g. edm2-img512-s-uncond-...)")
        net, codec = load_latent(backbone, vae, guide, guidance_weight, device)
        C, res = 3, net.img_resolution * codec.factor
        index = labels_for(class_labels, net.label_dim, data_labels, len(x0), "IMAGES")
        labels = None if index is None else lambda seeds: index[torch.as_tensor(seeds) - seed]
    else:
        net = load(backbone or DEFAULT_BACKBONE, device)
        C, res = net.img_channels, net.img_resolution
    if x0.shape[1] != C:
        raise ValueError(f"IMAGES: {images[0]} has {x0.shape[1]} channel(s); the backbone makes {C}-channel images")
    if x0.shape[-2:] != (res, res):
        raise ValueError(f"IMAGES: {images[0]} is {x0.shape[-1]}×{x0.shape[-2]}; the backbone makes {res}×{res} "
                         "images (resize or crop them first)")
    m_all = read_masks(len(x0), res, mask=mask, mask_kind=mask_kind, mask_seed=mask_seed, hole_white=hole_white)
    run = sampler(net, method, backbone=backbone, guidance=guidance, steps=steps, solver=solver,
                  guidance_scale=guidance_scale, codec=codec, labels=labels)
    if steps is not None and steps > MANY_STEPS:
        print(f"aid inpaint: warning: --steps {steps} is far more than any method needs (the defaults are at most a "
              f"few hundred); expect {steps} or more network evaluations per batch (the progress bar counts them)",
              file=sys.stderr, flush=True)
    outs = []
    with tqdm(total=len(x0), desc=f"aid inpaint ({method})", unit="image", dynamic_ncols=True) as bar:
        hook = net.register_forward_hook(_evaluation_counter(bar))
        try:
            for i in range(0, len(x0), batch):
                m = m_all[i:i + batch].to(device)
                y = x0[i:i + batch].to(device) * m  # the methods never see the hole
                x, _ = run(y, m, list(range(seed + i, seed + i + len(y))))
                finite = torch.isfinite(x).flatten(1).all(1).cpu()
                if not finite.all():
                    bad = [n for n, ok in zip(names[i:i + batch], finite) if not ok]
                    raise FloatingPointError(
                        f"the {method} result is not finite (NaN or inf) for {', '.join(bad[:3])}"
                        f"{', ...' if len(bad) > 3 else ''}; nothing was written. Likely cause: "
                        f"{likely_causes(method, backbone, getattr(run, 'module', guidance), guidance_scale)}")
                outs.append(x.float().cpu().clamp(-1, 1))
                bar.update(len(y))
        finally:
            hook.remove()
    x = torch.cat(outs)
    for name, xi in zip(names, x):
        save_png(xi, os.path.join(out, name))
    print(f"wrote {len(x)} inpainted image(s) to {out}")
    if grid:
        rows = [[masked_input(g, m), xi.expand(3, -1, -1), g.expand(3, -1, -1)] for g, m, xi in zip(x0, m_all, x)]
        save_png(make_grid(torch.stack([im for row in rows for im in row]), nrow=3), os.path.join(out, GRID),
                 scale=max(1, 128 // res))
        print(f"wrote {os.path.join(out, GRID)}: masked input | output | input, one image per row")


def _evaluation_counter(bar):
    """A forward hook for the backbone: counts its evaluations on the progress bar (refreshed at most twice a
    second), so that a long batch shows it is moving."""
    count, last = [0], [time.monotonic()]

    def hook(module, args, output):
        count[0] += 1
        now = time.monotonic()
        if now - last[0] > 0.5:
            bar.set_postfix_str(f"{count[0]} network evaluations")
            last[0] = now
    return hook
