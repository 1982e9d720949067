"""Issue 24's first build item: the guidance module sees the whole image at the bundled resolution, inside the
parameter budget. The receptive field is measured, not computed from the architecture: the gradient of one
output pixel of μ_φ with respect to every pixel of y, for a module with random weights (a trained module's
zero-initialised output layer would give zero gradients)."""
import pytest
import torch

from aid.core.nn import n_params
from aid.edm import DEFAULT_BACKBONE, load
from aid.guidance.networks import GuidanceModule

RES = 32  # the bundled backbone's resolution


def reach(module: GuidanceModule, centre=(16, 16)) -> torch.Tensor:
    """|∂μ(centre)/∂y| over the image [RES, RES], normalised to its largest entry."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.3)
    y = torch.zeros(1, 1, RES, RES, requires_grad=True)
    x = torch.randn(1, 1, RES, RES)
    mask = torch.ones(1, 1, RES, RES)
    out = module(x, torch.tensor([2.0]), y, mask, torch.randn(1, 1, RES, RES), torch.tensor([1.0]))
    (g,) = torch.autograd.grad(out[0, 0, centre[0], centre[1]], y)
    g = g[0, 0].abs()
    return g / g.max()


def radius(g: torch.Tensor, centre=(16, 16), tol=0.01) -> int:
    """The largest Chebyshev distance from the centre at which the gradient is above tol of its peak."""
    ii, jj = torch.nonzero(g > tol, as_tuple=True)
    return int(torch.maximum((ii - centre[0]).abs(), (jj - centre[1]).abs()).max())


def test_single_scale_module_sees_only_its_neighbourhood():
    """The module bundled before issue 24 (two FiLM blocks at full resolution): a 9×9 window."""
    assert radius(reach(GuidanceModule(1, width=16, depth=2, levels=0))) <= 4


def far(g: torch.Tensor, centre=(16, 16), distance=12) -> float:
    """The largest normalised gradient at Chebyshev distance >= distance from the centre."""
    ii, jj = torch.meshgrid(torch.arange(RES), torch.arange(RES), indexing="ij")
    return float(g[torch.maximum((ii - centre[0]).abs(), (jj - centre[1]).abs()) >= distance].max())


WIDE_TOP = dict(width=24, depth=1, levels=2, level_width=12)  # more of the budget at full resolution


@pytest.mark.parametrize("kw", [dict(width=16, depth=2, levels=2), dict(width=16, depth=2, levels=3), WIDE_TOP])
def test_multi_scale_module_reaches_the_border(kw):
    """Two downsamplings (32 → 8) let the centre pixel read y up to the image's border (above 1 % of the peak),
    and pixels 12 or more away weigh over 5× what they weigh for the single-scale module."""
    g = reach(GuidanceModule(1, step_aware=True, **kw))
    assert radius(g) >= 15
    assert far(g) > 5 * far(reach(GuidanceModule(1, width=16, depth=2, levels=0, step_aware=True)))


@pytest.mark.parametrize("kw", [dict(width=16, depth=2, levels=2), WIDE_TOP])
def test_multi_scale_module_fits_the_budget(kw):
    """< 1 % of the bundled backbone's parameters, with the step input."""
    ratio = n_params(GuidanceModule(1, step_aware=True, **kw)) / n_params(load(DEFAULT_BACKBONE))
    assert ratio < 0.01, ratio


def test_level_width_is_left_out_of_modules_without_it():
    """A module without level_width has the parameters (and file) of one made before the option existed."""
    plain = GuidanceModule(1, width=16, depth=2, levels=2)
    assert "level_width" not in plain.config and not any("up_out" in k for k in plain.state_dict())
    wide = GuidanceModule(1, **WIDE_TOP)
    assert wide.config["level_width"] == 12 and wide.body.up_out.out_channels == 24
