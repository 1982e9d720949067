"""Every inpainting method by name, ready for a backbone: the baselines of aid.baselines, and the amortized
methods (DEFT, AID) with their trained modules loaded. Used by `aid inpaint`, the benchmark and the tuning."""
from __future__ import annotations

import inspect
from functools import partial, update_wrapper

from aid.baselines import METHODS
from aid.baselines.deft import deft, h_transform
from aid.core.checkpoint import read_metadata
from aid.core.common import device_of
from aid.guidance.actor_critic import ACConfig
from aid.guidance.sample import load_actor, sample_aid

# The sharp module's field is regressed onto its target by a network under 1 % of the backbone, which falls short
# of it: scaled by 1.5 at deployment it scored higher hole PSNR than at 1 or 1.25 on Euler steps, level on ancestral
# steps, and a lower FD_fmnist on both (validation split; docs/results.md, "Since 2026-12-06 (late night)").
SHARP_SCALE = 1.5
# Other settings of a method under their own names, so that a benchmark reports both and never mixes them in one
# curve: name -> (method, the keyword arguments that differ from its sampler's defaults).
VARIANTS = {
    "ding_public": ("ding", dict(eta="square")),  # the public eta_type (ours: eta = 1, tuned on validation)
    "daps_public": ("daps", dict(ode_steps=5)),  # the public 5 ODE steps per level: DAPS-1K at 200 levels
    "aid_paste": ("aid", dict(project=False)),  # the paper's form: the known pixels pasted at the end only
    # AID's sharp setting: the same sampler with its own module (OWN_MODULE), its field scaled by SHARP_SCALE
    "aid_sharp": ("aid", dict(guidance_scale=SHARP_SCALE)),
    # AID's modules on ancestral steps, DDIM(η = 1) from the guided denoiser (aid.edm.sampler.control_gain)
    "aid_ancestral": ("aid", dict(eta=1.0)),
    "aid_sharp_ancestral": ("aid", dict(eta=1.0, guidance_scale=SHARP_SCALE)),
    # the mean of 2 of those samples: an estimate of the posterior mean at twice the cost (mean_of_samples)
    "aid_sharp_mean2": ("aid", dict(eta=1.0, guidance_scale=SHARP_SCALE, samples=2)),
    # ... of an antithetic pair: the second sample's noise the first's negated
    "aid_sharp_antithetic2": ("aid", dict(eta=1.0, guidance_scale=SHARP_SCALE, samples=2, antithetic=True)),
}
NAMES = [*METHODS, "aid", *VARIANTS]  # every method by name, in the order of the benchmark's tables
# Variants that run with another trained module than their method's (the benchmark's --aid-sharp): name -> its key.
# Every aid_sharp* variant runs the sharp module.
OWN_MODULE = {name: "aid_sharp" for name in VARIANTS if name.startswith("aid_sharp")}
# Sample j of an image whose seed is i draws with seed i + SEED_STRIDE·j (mean_of_samples): distinct within an image;
# beyond 1,000 images (seeds 0–999 in the benchmark) another image's first sample may share its noise, harmless to
# each image's mean.
SEED_STRIDE = 1000


def base_method(name: str) -> str:
    """The method a name runs: itself, or a variant's (aid_paste -> aid)."""
    return VARIANTS[name][0] if name in VARIANTS else name


def averages(name: str) -> bool:
    """Whether a name runs the mean of several samples (mean_of_samples: aid_sharp_mean2, aid_sharp_antithetic2)."""
    return "samples" in VARIANTS.get(name, (name, {}))[1]


def module_key(name: str) -> str:
    """Whose trained module a name runs with: its own (OWN_MODULE) or its method's (aid_paste -> aid)."""
    return OWN_MODULE.get(name, base_method(name))


def load_sampler(method: str, net, module: str | None = None):
    """method's sampler, fn(net, y, mask, seeds, num_steps, **hyperparameters) -> (x, report): a baseline of
    aid.baselines, or DEFT or AID with its trained module (module: h.safetensors from train_deft, or
    actor.safetensors from aid.guidance.train) loaded once onto net's device; a variant (VARIANTS) is its method
    with other defaults. AID's has no num_steps default: its num_steps and solver should be those of training
    (training_settings)."""
    base, settings = VARIANTS.get(method, (method, {}))
    if base == "deft":
        fn = partial(deft, h=h_transform(module, net))
    elif base == "aid":
        fn = aid_sampler(load_actor(module, device_of(net)))
    else:
        fn = METHODS[base]
    if "samples" in settings:
        fn = mean_of_samples(fn)
    return partial(fn, **settings) if settings else fn


def mean_of_samples(fn):
    """fn's sampler with a `samples` argument M: the mean of M samples of each image, drawn with the seeds
    seeds + SEED_STRIDE·j (j < M), each clamped to [-1, 1]; its report counts the M samplers' NFE, VJP and seconds.
    antithetic: the samples in pairs, the second of each drawn with the first's seeds and every noise negated (fn
    must take `antithetic`: AID's sampler does, aid.edm.sample); anticorrelated, so their mean is nearer the
    posterior mean than that of two independent samples (+0.2 to +0.4 dB on validation at 2 × 9 steps).
    A sampler drawing near posterior samples has about twice the posterior mean's hole MSE (the sample's spread
    adds the posterior variance once more); the mean of M removes (M − 1)/M of that spread, and blurs as the
    posterior mean does (higher FD_fmnist). benchmarks/sample_mean.py measures it against one sample of M·K steps.
    Pixel images only (aid.latent refuses it)."""
    params = list(inspect.signature(fn).parameters.values())
    if any(p.name == "samples" for p in params):
        raise ValueError(f"mean_of_samples: {getattr(fn, '__name__', fn)!r} already takes samples")

    def mean(net, y, mask, seeds, *args, samples=1, antithetic=False, **kwargs):
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        total, report = 0, None
        for j in range(samples):
            pair, twin = divmod(j, 2) if antithetic else (j, 0)
            twin_kw = {"antithetic": True} if twin else {}
            x, rep = fn(net, y, mask, [int(s) + SEED_STRIDE * pair for s in seeds], *args, **twin_kw, **kwargs)
            total = total + x.clamp(-1, 1)
            report = rep if report is None else {k: v + rep[k] if k in ("nfe", "vjp", "seconds") else v
                                                 for k, v in report.items()}
        return total / samples, report
    update_wrapper(mean, fn)  # __wrapped__: the keywords a partial fn binds stay visible
    # fn's signature with `samples` added, so that defaults() and a benchmark cell's hyperparameters see both
    # (antithetic stays out of it: a variant that sets it records it from its bound keywords, and the cells of the
    # others keep the hyperparameters they were measured with)
    samples = inspect.Parameter("samples", inspect.Parameter.KEYWORD_ONLY, default=1)
    mean.__signature__ = inspect.Signature([p for p in params if p.kind != p.VAR_KEYWORD] + [samples] +
                                           [p for p in params if p.kind == p.VAR_KEYWORD])
    return mean


def aid_sampler(actor):
    """AID with a loaded actor, in the signature of the baselines; `project` and `eta` are in the signature so that
    a benchmark cell records them (aid.bench.results.hyperparameters)."""
    def aid(net, y, mask, seeds, num_steps, project=True, eta=None, **kwargs):
        return sample_aid(net, actor, y, mask, seeds, num_steps=num_steps, project=project, eta=eta, **kwargs)
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
