"""The guidance module (actor) and critic: shapes, zero start, size under 1 % of the backbones."""
import pytest
import torch

from aid.core.nn import step_fraction
from aid.edm import EDMPrecond, sample
from aid.edm.train import FMNIST32
from aid.guidance.networks import Critic, GuidanceModule, parameter_ratio


def test_actor_starts_at_zero_and_is_trainable():
    actor = GuidanceModule(1)
    x, y = torch.randn(3, 1, 8, 8), torch.randn(3, 1, 8, 8)
    mask, sigma = (torch.rand(3, 1, 8, 8) > 0.5).float(), torch.tensor([0.1, 1.0, 50.0])
    u = actor(x, sigma, y, mask, denoised=torch.randn_like(x))
    assert u.shape == x.shape and torch.equal(u, torch.zeros_like(u))
    u.sum().backward()
    assert actor.conv_out.weight.grad.abs().sum() > 0  # the zero layer still gets a gradient
    with pytest.raises(ValueError, match="pass denoised"):
        actor(x, sigma, y, mask)
    assert GuidanceModule(1, use_denoised=False)(x, sigma, y, mask).shape == x.shape
    with pytest.raises(ValueError, match="output_scaling must be"):
        GuidanceModule(1, output_scaling="sigma")


def test_output_scaling_inv_sigma_divides_by_sigma():
    torch.manual_seed(0)
    plain = GuidanceModule(1, use_denoised=False)
    torch.nn.init.normal_(plain.conv_out.weight)  # leave the zero start so the outputs differ from 0
    scaled = GuidanceModule(1, use_denoised=False, output_scaling="inv_sigma")
    scaled.load_state_dict(plain.state_dict())
    x, y, mask = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8), torch.ones(2, 1, 8, 8)
    sigma = torch.tensor([0.5, 4.0])
    u = plain(x, sigma, y, mask)
    assert u.abs().max() > 0
    torch.testing.assert_close(scaled(x, sigma, y, mask), u / sigma.view(-1, 1, 1, 1))


def test_zero_initialized_actor_leaves_sampling_unguided():
    torch.manual_seed(0)
    net = EDMPrecond(8, 1, model_channels=8, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4]).eval()
    actor = GuidanceModule(1)
    y, mask = torch.zeros(2, 1, 8, 8), torch.ones(2, 1, 8, 8)
    guided = sample(net, [0, 1], num_steps=4, guidance=lambda x, s, D, sn: actor(x, s, y, mask, D))
    assert torch.equal(guided, sample(net, [0, 1], num_steps=4))


def test_step_aware_actor_starts_as_the_plain_one_and_then_tells_grids_apart():
    torch.manual_seed(0)
    plain = GuidanceModule(1, width=8, depth=1, emb=8)
    torch.nn.init.normal_(plain.conv_out.weight)  # a non-zero field
    aware = GuidanceModule(1, width=8, depth=1, emb=8, step_aware=True)
    missing, unexpected = aware.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["step_embed.freqs", "step_embed.linear.bias", "step_embed.linear.weight"]
    assert not unexpected and aware.config == {**plain.config, "step_aware": True} and "step_aware" not in plain.config
    x, y, D = torch.randn(3, 1, 8, 8), torch.randn(3, 1, 8, 8), torch.randn(3, 1, 8, 8)
    mask, sigma = torch.ones(3, 1, 8, 8), torch.tensor([0.1, 1.0, 50.0])
    coarse, fine = sigma * 0.2, sigma * 0.9  # a large and a small step from the same σ
    assert torch.equal(aware(x, sigma, y, mask, D, coarse), plain(x, sigma, y, mask, D))  # zero embedding at first
    torch.nn.init.normal_(aware.step_embed.linear.weight)
    assert not torch.allclose(aware(x, sigma, y, mask, D, coarse), aware(x, sigma, y, mask, D, fine))
    assert torch.equal(plain(x, sigma, y, mask, D, coarse), plain(x, sigma, y, mask, D, fine))  # plain ignores it
    with pytest.raises(ValueError, match="step_aware=True; pass sigma_next"):
        aware(x, sigma, y, mask, D)
    torch.testing.assert_close(step_fraction(sigma, torch.zeros(3)), torch.zeros(3))  # the last step: all of σ
    torch.testing.assert_close(step_fraction(sigma, fine), torch.full((3,), 0.1).log())


@pytest.mark.parametrize("backbone", ["bundled", "edm-ffhq-64x64"])
def test_default_actor_is_under_one_percent_of_the_backbone(backbone):
    with torch.device("meta"):
        if backbone == "bundled":
            net, actor = EDMPrecond(**FMNIST32), GuidanceModule(1)
        else:
            net = EDMPrecond(64, 3, augment_dim=9, model_channels=128, channel_mult=[1, 2, 2, 2])
            actor = GuidanceModule(3)
    assert parameter_ratio(actor, net) < 0.01
    assert parameter_ratio(GuidanceModule(actor.config["img_channels"], step_aware=True), net) < 0.01


def test_critic_gives_one_value_per_image():
    x, s, y, m = torch.randn(5, 3, 8, 8), torch.rand(5) + 0.1, torch.randn(5, 3, 8, 8), torch.ones(5, 1, 8, 8)
    for critic in (Critic(3), Critic(3, head="pool", sees_x0=False, levels=1)):
        v = critic(x, s, y, m, x0=torch.randn(5, 3, 8, 8))
        assert v.shape == (5,) and torch.isfinite(v).all()
