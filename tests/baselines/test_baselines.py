"""Every training-free baseline on the linear-Gaussian oracle: shapes, pasted known pixels, seeds,
cost reports, and that each one uses the observation (it lands nearer the true posterior mean
than unguided sampling + paste, which ignores y). Amortized baselines need a trained module and
have their own tests (AMORTIZED)."""
import pytest
import torch

from aid.baselines import METHODS, repaint_nfe, repaint_schedule
from aid.eval.oracle import moments

SHAPE = (1, 4, 4)
SETTINGS = {"paste": dict(num_steps=18), "replacement": dict(num_steps=18), "ddnm": dict(num_steps=20),
            "diffpir": dict(num_steps=20), "repaint": dict(num_steps=20, jump_length=5, jump_n_sample=3),
            "dps": dict(num_steps=20, zeta=0.5), "pigdm": dict(num_steps=20, weight=1.0),
            "ding": dict(num_steps=10), "daps": dict(num_steps=20, ode_steps=1)}
AMORTIZED = {"deft": "needs a trained h-transform network (tests/baselines/test_deft.py trains one and tests it)"}
METHOD_PARAMS = [pytest.param(name, marks=pytest.mark.skip(reason=f"{name}: {AMORTIZED[name]}")) if name in AMORTIZED
                 else name for name in METHODS]


@pytest.fixture(scope="module")
def problem(oracle):
    """The oracle (conftest.py) with the exact posterior mean of its hole."""
    net, y, mask = oracle
    mean, _ = net.posterior(mask[0], y)
    return net, y, mask, mean


def _run(name, problem, B, seed0=0):
    net, y, mask, _ = problem
    return METHODS[name](net, y.expand(B, *SHAPE).contiguous(), mask.expand(B, 1, 4, 4), list(range(seed0, seed0 + B)),
                         **SETTINGS[name])


def test_every_method_is_tested_here_or_listed_as_amortized():
    assert set(METHODS) == set(SETTINGS) | set(AMORTIZED) and not set(SETTINGS) & set(AMORTIZED)


@pytest.mark.parametrize("name", METHOD_PARAMS)
def test_shapes_known_pixels_seeds_and_cost(name, problem):
    _, y, _, _ = problem
    x, report = _run(name, problem, 4)
    assert x.shape == (4, *SHAPE) and torch.isfinite(x).all()
    assert torch.equal(x[..., :2], y.expand(4, *SHAPE)[..., :2])
    again, _ = _run(name, problem, 4)
    assert torch.equal(x, again)
    steps = SETTINGS[name]["num_steps"]
    want_nfe = {"repaint": repaint_nfe(20, 5, 3), "ding": 2 * steps - 1}.get(name, steps)  # DAPS: steps × 1 ODE step
    assert report["nfe"] == want_nfe
    assert report["vjp"] == (steps if name in ("dps", "pigdm") else 0)


def test_every_method_uses_the_observation(problem):
    net, y, mask, post_mean = problem
    hole = ~mask[0].expand(SHAPE).reshape(-1).bool()
    err = {}
    for name in SETTINGS:
        x, _ = _run(name, problem, 1500)
        err[name] = (moments(x)[0] - post_mean)[hole].norm().item()
    for name in SETTINGS:
        if name != "paste":
            assert err[name] < 0.7 * err["paste"], err


def test_repaint_schedule_counts():
    path = repaint_schedule(250, 10, 10)
    assert path[0] == 0 and path[-1] == 250
    forward = sum(b > a for a, b in zip(path, path[1:]))
    assert repaint_nfe(250, 10, 10) == forward == 2410  # RePaint's 250/10/10 schedule: 2,410 model calls


def test_bad_arguments(problem):
    net, y, mask, _ = problem
    with pytest.raises(ValueError, match="one seed per image"):
        METHODS["ddnm"](net, y.expand(2, *SHAPE), mask.expand(2, 1, 4, 4), [0])
    with pytest.raises(ValueError, match="mask \\[B, 1, H, W\\]"):
        METHODS["ddnm"](net, y.expand(2, *SHAPE), mask[0], [0, 1])
