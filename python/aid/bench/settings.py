"""What one call of the speed–quality benchmark (aid.bench.run.benchmark) runs: its Settings, the full benchmark's
defaults and the smoke version's (QUICK), and RULES, the rules every call keeps (written into each results.json
and results.md, and quoted in docs/benchmark.md)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from aid.data.masks import KINDS
from aid.edm import DEFAULT_BACKBONE
from aid.methods import NAMES

ALL_METHODS = NAMES  # every method of the benchmark (variants included), in the order of the tables
DEFAULTS = dict(methods=ALL_METHODS, nfe=[5, 9, 19, 35], masks=["center_box", "pixels70", "lama_medium", "half_right"],
                images=1000, batch=64, fd_min_images=1000, no_default_nfe=False)  # the full benchmark's
QUICK = dict(methods=["paste", "ddnm", "repaint", "pigdm"], nfe=[5, 9], masks=["center_box", "pixels70"], images=8,
             batch=8, fd_min_images=8, no_default_nfe=True)  # the one-minute smoke version's: Settings(out, **QUICK)

RULES = """\
Fixed, so that reruns and other machines compare:
- images: Fashion-MNIST test images 0 … N−1 at 32×32 in [-1, 1]; image i is inpainted from
  y = m_i ⊙ x_i (the hole zeroed: nothing of the truth leaks) with seed i, by every method;
- masks: m_i = aid.data.masks.benchmark_masks(kind, N, 32)[i], the versioned test-mask set;
- metrics per cell, on the outputs clipped to [-1, 1]: mean and std over images of hole PSNR
  (the tables add ± its standard error), whole-image PSNR, SSIM and hole MSE; FD_fmnist and
  KD_fmnist (the bundled Fashion-MNIST classifier's features: not FID/KID; KD is the unbiased
  estimate, so it can be < 0 on small sets) between the cell's outputs and the same ground-truth
  images, only when the cell has >= --fd-min-images images (default 1,000); seconds per image:
  wall clock of the sampler calls only (batched, CUDA synchronized, after an untimed warm-up),
  summed over the processes that ran the cell's images, over the number of images (a cell's
  "processes" says how many ran it; sharing the work never changes any other number); the largest
  |x − y| on known pixels (0 for a method that pastes); seam: the mean |jump| between 4-neighbours
  across the mask's boundary (aid.eval.metrics.boundary_jump) of the outputs over that of the
  ground-truth images (1: no visible seam; cells from before it: –), ± its standard error
  (aid.eval.metrics.seam_ratio; cells from before it: none).

Cost = NFE + VJP per image (a vector–Jacobian product through the backbone counts as one more
evaluation). A target cost T becomes num_steps by one rule for every method: num_steps is the
smallest N whose cost(N) is nearest to T, where
  cost(N) = N    for Euler/DDIM-type methods (paste, replacement, ddnm, diffpir, deft, aid);
  cost(N) = 2N   for dps and pigdm (1 NFE + 1 VJP per step);
  cost(N) = 2N − 1 for ding (two denoiser calls per step, one on the last);
  cost(N) = N·S  for daps (N annealing levels, S = ode_steps Euler steps of the ODE at each);
  cost(N) = the forward steps of RePaint's jump schedule at the function's own jump_length and
                 jump_n_sample (10, 10): N for N <= 10, then N + 90·⌊(N − 1)/10⌋. RePaint cannot
                 resample below 11 steps (101 NFE): targets 19 and 35 snap to N = 10;
  M × the above for a variant that averages M samples (aid_sharp_mean2: M = 2, so target 19 is
                 2 samples of 9 steps).
Targets that snap to the same N are run once. Each method's own default num_steps (from its
function signature) is an extra point (not with --quick). Each run checks the cost counted in the
method's report against this rule. Cells costing more than --expensive-cost (default 1,000) use
at most --expensive-images (default 250) images, as their "images" entry states. Every other
hyperparameter is the function's default, recorded per cell; a --resume or --merge whose cells
of one method have different hyperparameters is refused. A variant (aid.methods.VARIANTS:
ding_public, daps_public, aid_paste, ...) is its method with other settings and that method's cost
rule, reported under its own name.
"""


def _default(name: str):
    return field(default_factory=lambda: list(DEFAULTS[name]))


@dataclass
class Settings:
    """One benchmark call. Each field is the `aid bench` flag of the same name (`aid bench --help` describes
    them); the defaults are the full benchmark's, Settings(out, **QUICK) is the smoke version. Lists lose
    their repeats, examples is capped at images, and a bad value is refused with a ValueError naming the flag."""

    out: str  # the folder for results.json/.md, the PNGs and examples.safetensors
    backbone: str = DEFAULT_BACKBONE
    methods: list[str] = _default("methods")
    nfe: list[int] = _default("nfe")  # target costs (NFE + VJP per image)
    masks: list[str] = _default("masks")
    images: int = DEFAULTS["images"]
    batch: int = DEFAULTS["batch"]
    fd_min_images: int = DEFAULTS["fd_min_images"]
    no_default_nfe: bool = DEFAULTS["no_default_nfe"]  # leave out each method's default num_steps
    expensive_cost: int = 1000
    expensive_images: int = 250
    deft: str | None = None  # DEFT's trained h-transform; None: DEFT is skipped
    aid: str | None = None  # AID's trained guidance module; None: AID is skipped
    aid_sharp: str | None = None  # the guidance module of AID's sharp setting; None: aid_sharp is skipped
    examples: int = 3
    example_nfe: int = 19
    device: str = field(default_factory=lambda: "cuda" if torch.cuda.is_available() else "cpu")
    resume: bool = False
    merge: list[str] = field(default_factory=list)
    forget: list[str] = field(default_factory=list)  # with resume: methods whose cells are dropped first
    replace: bool = False  # a merged cell replaces one of the same name

    def __post_init__(self):
        self.methods, self.masks, self.nfe = (list(dict.fromkeys(v)) for v in (self.methods, self.masks, self.nfe))
        unknown = [m for m in self.methods + self.forget if m not in ALL_METHODS] + [k for k in self.masks
                                                                                    if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown --methods, --forget or --masks {', '.join(unknown)}: methods are "
                             f"{', '.join(ALL_METHODS)}; mask kinds {', '.join(KINDS)}")
        if self.forget and not self.resume:
            raise ValueError("--forget drops cells of a results folder being resumed: pass --resume too")
        if self.replace and not self.merge:
            raise ValueError("--replace says which of two cells --merge keeps: pass --merge FOLDER too")
        if (self.images < 2 or self.batch < 1 or self.fd_min_images < 2 or min(self.nfe, default=0) < 1
                or self.expensive_images < 2):
            raise ValueError("need --images >= 2, --batch >= 1, --fd-min-images >= 2, every --nfe >= 1, "
                             "--expensive-images >= 2")
        if self.examples < 0:
            raise ValueError(f"--examples must be >= 0, got {self.examples}")
        self.examples = min(self.examples, self.images)
