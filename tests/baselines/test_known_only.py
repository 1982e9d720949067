"""Issue 20, case 7: every sampler reads only m⊙y. Whatever the hole of y holds (NaN, inf, garbage) never
reaches the result; the known pixels come out exactly; and a call with no image says so."""
import pytest
import torch

from aid.baselines import METHODS, deft
from aid.baselines.deft import HTransform
from aid.edm import sample
from aid.eval.oracle import GaussianDenoiser, random_covariance
from aid.guidance.networks import GuidanceModule
from aid.guidance.sample import sample_aid
from aid.latent import paste_pixels

SHAPE = (1, 8, 8)
FAST = {"paste": dict(num_steps=3), "replacement": dict(num_steps=3), "ddnm": dict(num_steps=3),
        "diffpir": dict(num_steps=3), "repaint": dict(num_steps=4, jump_length=2, jump_n_sample=2),
        "dps": dict(num_steps=3), "pigdm": dict(num_steps=3), "ding": dict(num_steps=3),
        "daps": dict(num_steps=2, ode_steps=2, mcmc_steps=2)}


def _problem(B=2):
    net = GaussianDenoiser(torch.zeros(64, dtype=torch.float64), random_covariance(64, 0), SHAPE)
    y = torch.randn(B, *SHAPE, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    mask = torch.ones(B, 1, 8, 8)
    mask[..., 2:6, 2:6] = 0
    return net, y, mask


def _poisoned(y, mask, value):
    """y with `value` in the hole and the known pixels untouched."""
    return torch.where(mask.bool(), y, torch.full_like(y, value))


def _aid(net, y, mask, seeds, **kw):
    torch.manual_seed(0)
    actor = GuidanceModule(1, width=8, depth=1, emb=8)
    torch.nn.init.normal_(actor.conv_out.weight, std=0.1)  # a field that reads y
    return sample_aid(net, actor, y, mask, seeds, num_steps=3, **kw)


def _deft(net, y, mask, seeds):
    torch.manual_seed(0)
    h = HTransform(img_channels=1, sigma_data=0.5, width=8, emb=8)
    torch.nn.init.normal_(h.conv_out.weight, std=0.1)  # an h that reads y
    return deft(net, y, mask, seeds, num_steps=3, h=h.eval().requires_grad_(False))


SAMPLERS = {**{name: (lambda name: lambda net, y, m, s: METHODS[name](net, y, m, s, **FAST[name]))(name)
               for name in METHODS if name in FAST},
            "deft": _deft, "aid": _aid, "aid_projecting": lambda net, y, m, s: _aid(net, y, m, s, project=True),
            "edm.sample(mask, y)": lambda net, y, m, s: (sample(net, s, num_steps=3, solver="euler", mask=m, y=y),
                                                          {})}


def test_every_method_is_covered():
    assert set(METHODS) <= set(SAMPLERS), set(METHODS) - set(SAMPLERS)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e6])
def test_the_hole_of_y_is_never_read(name, value):
    net, y, mask = _problem()
    clean, _ = SAMPLERS[name](net, mask * y, mask, [0, 1])
    poisoned, _ = SAMPLERS[name](net, _poisoned(y, mask, value), mask, [0, 1])
    assert torch.isfinite(clean).all()
    assert torch.equal(poisoned, clean), name


def test_paste_pixels_reads_only_the_known_pixels():
    _, y, mask = _problem()
    x = torch.zeros_like(y)
    assert torch.equal(paste_pixels(x, _poisoned(y, mask, float("nan")), mask), mask * y)


@pytest.mark.parametrize("name", ["ddnm", "replacement", "aid", "edm.sample(mask, y)"])
def test_no_image_is_an_error_that_says_so(name):
    net, y, mask = _problem()
    with pytest.raises(ValueError, match="at least one image"):
        SAMPLERS[name](net, y[:0], mask[:0], [])
