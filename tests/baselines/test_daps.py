"""DAPS (aid.baselines.daps): shapes, pasted known pixels, per-image seeds and its cost (annealing levels × ODE
steps); against a transcription of the public sampler (zhangbingliang2019/DAPS: sampler.py's DAPS.sample,
cores/scheduler.py's EDM scheduler and Euler PF-ODE, cores/mcmc.py's Langevin sampler with the "gaussian" prior),
exactly without MCMC (the update is then deterministic given the noise) and in distribution with it (the K
Langevin steps are drawn in closed form); and on the linear-Gaussian oracle, hole moments that approach the
exact posterior as the annealing levels grow."""
import math

import pytest
import torch

from aid.baselines import METHODS, daps
from aid.baselines.daps import langevin
from aid.core.common import generators, randn_per_sample
from aid.data.masks import masks
from aid.eval.oracle import moments

SHAPE = (1, 4, 4)




def poly7(s_max, s_min, n):
    """EDMScheduler.get_discrete_time_steps: n times from s_max to s_min, ρ = 7 (σ(t) = t)."""
    r = torch.linspace(0, 1, n, dtype=torch.float64)
    return (s_max ** (1 / 7) + r * (s_min ** (1 / 7) - s_max ** (1 / 7))) ** 7


def public_daps(net, y, mask, seeds, A, S, K, lr=5e-5, lr_min_ratio=0.01, tau=0.01, sigma_max=80.0, sigma_min=0.1,
                ode_sigma_min=0.01):
    """DAPS.sample in float64, one Langevin step at a time, the noise from the per-image generators (start, then
    per level: K Langevin draws, the renoise)."""
    levels = torch.cat([poly7(sigma_max, sigma_min, A + 1)[:-1], torch.zeros(1, dtype=torch.float64)])  # discretize
    gens = generators(seeds, "cpu")
    noise = lambda: randn_per_sample(gens, y.shape[1:], "cpu").double()  # noqa: E731
    y, m = y.double(), mask.double()
    xt = sigma_max * noise()
    for step in range(A):
        sigma = levels[step]
        x = xt
        ts = poly7(float(sigma), ode_sigma_min, S + 1)
        for t, tn in zip(ts[:-1], ts[1:]):  # DiffusionPFODE.sample, Euler: dx/dt = −t·score(x, t)
            score = (net(x.float(), t.float().expand(len(x))).double() - x) / t**2
            x = x + (tn - t) * (-t * score)
        x0hat = x
        lr_step = (1 + step / (A + 1) * (lr_min_ratio - 1)) * lr  # get_lr(step / num_steps), num_steps = A + 1
        x = x0hat.clone()
        for _ in range(K):  # score_fn with prior_solver "gaussian", mc_update "langevin"
            data_grad = 2 * m * (m * x - y)  # ∇‖m⊙x − y‖², the inpainting operator's gradient
            score = -data_grad / tau**2 + (xt - x) / sigma**2 + (x0hat - xt) / sigma**2
            x = x + lr_step * score + math.sqrt(2 * lr_step) * noise()
        xt = x + noise() * levels[step + 1]
    return m * y + (1 - m) * xt


@pytest.mark.parametrize("num_steps, ode_steps", [(1, 1), (2, 3), (3, 2)])
def test_shapes_known_pixels_seeds_and_cost(tiny_edm, num_steps, ode_steps):
    net = tiny_edm
    g = torch.Generator().manual_seed(3)
    y, mask = torch.rand(3, 1, 16, 16, generator=g) * 2 - 1, masks("random_box", 3, 16)
    kw = dict(num_steps=num_steps, ode_steps=ode_steps)
    x, report = daps(net, y, mask, [5, 6, 7], **kw)
    assert x.shape == y.shape and torch.isfinite(x).all()
    assert torch.equal(mask * x, mask * y)
    assert report == {"nfe": num_steps * ode_steps, "vjp": 0}
    assert torch.equal(x, METHODS["daps"](net, y, mask, [5, 6, 7], **kw)[0])
    alone, _ = daps(net, y[1:2], mask[1:2], [6], **kw)
    torch.testing.assert_close(alone, x[1:2], rtol=0, atol=1e-4)  # an image depends on its seed, not its batch
    assert not torch.equal(x[0], daps(net, y, mask, [8, 6, 7], **kw)[0][0])  # another seed


@pytest.mark.parametrize("num_steps, ode_steps", [(1, 3), (6, 2)])
def test_matches_the_public_sampler_without_mcmc(oracle, num_steps, ode_steps):
    """With K = 0 Langevin steps DAPS is deterministic given the noise: annealing grid, x̂0 ODE, renoise."""
    net = oracle[0]
    g = torch.Generator().manual_seed(1)
    mask = (torch.rand(3, 1, 4, 4, generator=g) > 0.5).float()
    y = mask * torch.randn(3, *SHAPE, generator=g)
    x, _ = daps(net, y, mask, [3, 4, 5], num_steps=num_steps, ode_steps=ode_steps, mcmc_steps=0)
    want = public_daps(net, y, mask, [3, 4, 5], num_steps, ode_steps, 0)
    assert (x.double() - want).abs().max() < 1e-5  # measured 4e-8


@pytest.mark.parametrize("hP", [0.0, 0.01, 1.0, 1.9, 2.0, 2.05])
def test_closed_form_langevin_is_the_chain(hP):
    """K steps x ← x − hP·(x − c) + √(2h)·ξ: the mean and variance recursions against langevin()'s (a^K, v),
    including hP = 2 (a = −1) and the unstable hP > 2 that the public chain also runs into."""
    h, K = 1e-3, 37
    P = torch.tensor([hP / h], dtype=torch.float64)
    aK, v = langevin(h, P, K)
    d, var = 1.0, 0.0  # distance to c and variance of a chain started at a fixed point
    for _ in range(K):
        d, var = d - h * P.item() * d, (1 - h * P.item()) ** 2 * var + 2 * h
    assert math.isclose(aK.item(), d, rel_tol=1e-9, abs_tol=1e-12) and math.isclose(v.item(), var, rel_tol=1e-9)


@pytest.mark.parametrize("hp", [dict(lr=5e-5), dict(lr=1e-3, tau=0.1)])
def test_matches_the_public_sampler_in_distribution(oracle, hp):
    """Moments of 4,000 samples of each (different seeds) on the oracle, A = 5 levels, S = 2, K = 30 Langevin
    steps; the public lr (the hole barely moves) and one where the hole mixes. Measured on two seed sets: mean
    difference ≤ 0.0099 and covariance ≤ 0.0023 per entry (the largest hole variance is 0.026–0.046); without the
    Langevin steps the mean is 0.15 off, and with 60 instead of 30 in the mixing case the covariance 0.021."""
    net, y, mask = oracle
    B = 4000
    Y, M = y.expand(B, *SHAPE).contiguous(), mask.expand(B, 1, 4, 4)
    mine, _ = daps(net, Y, M, list(range(B)), num_steps=5, ode_steps=2, mcmc_steps=30, **hp)
    ref = public_daps(net, Y, M, list(range(B, 2 * B)), 5, 2, 30, **hp)
    (m1, c1), (m2, c2) = moments(mine.double()), moments(ref)
    assert (m1 - m2).abs().max() < 0.02 and (c1 - c2).abs().max() < 0.005
    wrong, _ = daps(net, Y, M, list(range(B)), num_steps=5, ode_steps=2, mcmc_steps=0, **hp)  # the test can fail
    assert (moments(wrong)[1] - c2).abs().max() > 0.005 or (moments(wrong)[0] - m2).abs().max() > 0.02


def test_hole_moments_approach_the_posterior(oracle):
    """Relative errors over the hole, 4,000 samples, one ODE step per level (measured with three seed sets:
    mean 0.79–0.80 at 5 levels, 0.137–0.139 at 100; covariance 1.20–1.30 at 5 levels, 0.36–0.37 at 100)."""
    net, y, mask = oracle
    mean_star, cov_star = net.posterior(mask[0], y)
    hole = ~mask[0].expand(SHAPE).reshape(-1).bool()
    ms, cs = mean_star[hole], cov_star[hole][:, hole]
    err = {}
    for n in (5, 100):
        B = 4000
        x, _ = daps(net, y.expand(B, *SHAPE).contiguous(), mask.expand(B, 1, 4, 4), list(range(B)), num_steps=n,
                    ode_steps=1)
        m, c = moments(x)
        err[n] = ((m[hole] - ms).norm() / ms.norm()).item(), ((c[hole][:, hole] - cs).norm() / cs.norm()).item()
    assert err[5][0] > 0.7 and err[100][0] < 0.2, err
    assert err[5][1] > 1.0 and err[100][1] < 0.5, err


def test_bad_arguments(oracle):
    net, y, mask = oracle
    for bad in (dict(ode_steps=0), dict(tau=0.0), dict(sigma_min=0.01, ode_sigma_min=0.01), dict(mcmc_steps=-1)):
        with pytest.raises(ValueError, match="daps: need"):
            daps(net, y, mask, [0], num_steps=2, **bad)
