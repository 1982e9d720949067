"""The bundled guidance modules, one per AID setting (python/aid/assets/, cards in assets/README.md): fidelity
(aid, DEFAULT_GUIDANCE) and sharp (aid_sharp, SHARP_GUIDANCE)."""
import pytest
import torch

from aid.baselines import METHODS
from aid.core.checkpoint import read_metadata
from aid.data.masks import benchmark_masks
from aid.edm import load
from aid.eval.metrics import psnr
from aid.guidance.networks import parameter_ratio
from aid.guidance.sample import BUNDLED_GUIDANCE, DEFAULT_GUIDANCE, SHARP_GUIDANCE, load_actor, sample_aid


@pytest.mark.parametrize("method", sorted(BUNDLED_GUIDANCE))
def test_bundled_module_is_within_the_budget_and_fills_holes_better_than_the_unguided_sampler(method):
    """Each module is < 1 % of the backbone and, on 16 held-out images with the benchmark's centre-box masks at
    9 steps, beats replacement (the same sampler with the field u = 0) in hole PSNR by over 1 dB (measured: 5.38
    for aid, 3.92 for aid_sharp, both at s = 1, the field as trained)."""
    from aid.data.datasets import fashion_mnist
    try:
        x0 = fashion_mnist("test", 32)[0][:16]
    except FileNotFoundError as e:
        pytest.skip(str(e))
    net, actor = load(), load_actor(BUNDLED_GUIDANCE[method])
    assert parameter_ratio(actor, net) < 0.01
    mask = benchmark_masks("center_box", 16, 32)
    hole = 1 - mask
    seeds = list(range(16))
    x_aid, _ = sample_aid(net, actor, mask * x0, mask, seeds, num_steps=9)
    x_u0, _ = METHODS["replacement"](net, mask * x0, mask, seeds, num_steps=9)
    gain = psnr(x_aid.clamp(-1, 1), x0, hole).mean() - psnr(x_u0.clamp(-1, 1), x0, hole).mean()
    assert gain > 1.0, float(gain)


def test_sharp_module_is_the_denoising_objectives_multiscale_step_aware_projecting_module():
    kind, config, extra = read_metadata(SHARP_GUIDANCE)
    assert kind == "GuidanceModule" and extra["objective"] == "denoising"
    assert config["levels"] == 2 and config["step_aware"] and config["project"]
    # its last round of 4,000 (benchmarks/runs/aid_sharp.sh), continued from round 4's file, 20,000 in all (the card)
    assert extra["num_steps_choices"] == [5, 9, 19, 35] and extra["iterations"] == 4000
    assert extra["init_actor"] == "7c1a0f50a42aa4648f095fee4095ce5664ef57bee1f22312a2fca2a83a21d9cb"
    assert torch.isfinite(torch.stack([p.abs().max() for p in load_actor(SHARP_GUIDANCE).parameters()])).all()


def test_fidelity_module_is_the_actor_critic_from_round_1_of_the_sharp_module_on_the_recipe():
    """The card's module: the recipe's multi-scale, step-aware, projecting network, trained by the actor–critic at
    β = 0.5 on K ∈ {5, 9, 19, 35} (its first stage is round 1 of the sharp recipe's seed 1: same network, same
    config); seed 1's snapshot at 4,750 of its 5,000 iterations, chosen on the validation split."""
    kind, config, extra = read_metadata(DEFAULT_GUIDANCE)
    assert kind == "GuidanceModule" and extra.get("objective", "actor_critic") == "actor_critic"
    assert config == read_metadata(SHARP_GUIDANCE)[1]
    assert extra["ac_config"]["beta"] == 0.5 and extra["num_steps_choices"] == [5, 9, 19, 35]
    assert extra["iterations"] == 4750 and extra["images"] == 4750 * 16 and extra["ac_config"]["lr_decay_iters"] == 5000
