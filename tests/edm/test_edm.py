"""EDM networks (official configurations and parameter counts) and the sampler against a
float64 plain-PyTorch EDM sampler written here from docs/method.md."""
import pytest
import torch

from aid.edm import EDMPrecond, edm_sigmas, nfe, sample

DDPMPP = dict(model_type="SongUNet", embedding_type="positional", encoder_type="standard", decoder_type="standard",
              channel_mult_noise=1, resample_filter=[1, 1], model_channels=128, channel_mult=[1, 2, 2, 2])
NCSNPP = dict(DDPMPP, embedding_type="fourier", encoder_type="residual", channel_mult_noise=2,
              resample_filter=[1, 3, 3, 1])


@pytest.mark.parametrize("config, count", [(DDPMPP, 61_805_571), (NCSNPP, 62_761_091)], ids=["ddpmpp", "ncsnpp"])
def test_official_64x64_configurations_have_the_official_parameter_count(config, count):
    """edm-{ffhq,afhqv2}-64x64-uncond-{vp,ve}: --cres=1,2,2,2 --augment=0.15 (augment_dim 9)."""
    with torch.device("meta"):
        net = EDMPrecond(64, 3, augment_dim=9, dropout=0.05, **config)
    assert sum(p.numel() for p in net.parameters()) == count
    keys = net.state_dict().keys()
    assert "model.enc.16x16_block2.qkv.weight" in keys and "model.dec.64x64_aux_conv.weight" in keys
    assert ("model.map_noise.freqs" in keys) == (config is NCSNPP)


def small_net(seed=0, **kw):
    torch.manual_seed(seed)
    net = EDMPrecond(16, 2, model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8], dropout=0.0,
                     **kw)
    with torch.no_grad():  # EDM zero-initializes the output layers; make the network do something
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval().requires_grad_(False)


def edm_sampler_float64(net, noise, num_steps, solver):
    """EDM's deterministic sampler in float64, from the equations (docs/method.md)."""
    n = torch.arange(num_steps, dtype=torch.float64)
    t = (80 ** (1 / 7) + n / (num_steps - 1) * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    t = torch.cat([t, torch.zeros(1, dtype=torch.float64)])
    x = noise.double() * t[0]
    D = lambda x_, s: net(x_.float(), s.float().expand(x_.shape[0])).double()  # noqa: E731
    for i in range(num_steps):
        d = (x - D(x, t[i])) / t[i]
        x_next = x + (t[i + 1] - t[i]) * d
        if solver == "heun" and i < num_steps - 1:
            d2 = (x_next - D(x_next, t[i + 1])) / t[i + 1]
            x_next = x + (t[i + 1] - t[i]) * (d + d2) / 2
        x = x_next
    return x


@pytest.mark.parametrize("solver", ["euler", "heun"])
def test_sampler_matches_float64_reference(solver):
    net, seeds, steps = small_net(), [3, 7, 11], 8
    noise = torch.stack([torch.randn(2, 16, 16, generator=torch.Generator().manual_seed(s)) for s in seeds])
    ours = sample(net, seeds, num_steps=steps, solver=solver)
    ref = edm_sampler_float64(net, noise, steps, solver)
    rel = (ours.double() - ref).norm() / ref.norm()
    assert rel < 1e-4, f"relative L2 error {rel:.2e}"
    assert nfe(steps, solver) == (steps if solver == "euler" else 2 * steps - 1)


def test_zero_guidance_is_exactly_unguided_and_seeds_are_per_image():
    net = small_net(1)
    plain = sample(net, [1, 2, 3], num_steps=5)
    guided = sample(net, [1, 2, 3], num_steps=5, guidance=lambda x, s, D, sn: torch.zeros_like(x))
    assert torch.equal(plain, guided)
    alone = sample(net, [2], num_steps=5)
    torch.testing.assert_close(alone[0], plain[1], rtol=1e-5, atol=1e-5)  # same seed, other batch
    assert not torch.allclose(plain[0], plain[1])


def test_guidance_enters_as_delta_r_times_u():
    """One Euler step from σ_0 = 80 to σ_1 with a constant control c: the guided state differs by (σ_0 − σ_1)·c."""
    net = small_net(2)
    c = 0.01
    s = edm_sigmas(1)  # [80, 0]: a single Euler step
    plain = sample(net, [5], num_steps=1, solver="euler")
    guided = sample(net, [5], num_steps=1, solver="euler", guidance=lambda x, sig, D, sn: torch.full_like(x, c))
    torch.testing.assert_close(guided - plain, torch.full_like(plain, (s[0] - s[1]).item() * c), rtol=1e-4, atol=1e-4)


def test_projection_pastes_known_pixels_and_rejects_bad_arguments():
    net = small_net(3)
    y = torch.rand(2, 2, 16, 16) * 2 - 1
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., :8] = 1
    out = sample(net, [0, 1], num_steps=4, mask=mask, y=y)
    assert torch.equal(out[..., :8], y[..., :8])
    with pytest.raises(ValueError, match="pass both mask and y"):
        sample(net, [0, 1], num_steps=4, mask=mask)
    with pytest.raises(ValueError, match="solver must be 'euler' or 'heun'"):
        sample(net, [0], solver="rk4")
    with pytest.raises(ValueError, match=r"y must have shape \[2, 2, 16, 16\]"):
        sample(net, [0, 1], mask=mask, y=y[:, :1])


def test_imagenet64_adm_configuration_matches_the_papers_rounded_count():
    """edm-imagenet-64x64-cond-adm: --arch=adm --cond=1 --augment=0; the EDM paper gives 296M parameters
    (rounded; the exact figure is not published in the sources available here)."""
    with torch.device("meta"):
        net = EDMPrecond(64, 3, label_dim=1000, model_type="DhariwalUNet", model_channels=192,
                         channel_mult=[1, 2, 3, 4], dropout=0.1)
    count = sum(p.numel() for p in net.parameters())
    assert round(count / 1e6) == 296, count
    keys = net.state_dict().keys()
    assert {"model.map_label.weight", "model.out_conv.weight", "model.enc.32x32_block0.qkv.weight"} <= set(keys)
    assert "model.map_label.bias" not in keys


def test_dhariwal_unet_runs_class_conditional():
    torch.manual_seed(0)
    net = EDMPrecond(16, 3, label_dim=10, model_type="DhariwalUNet", model_channels=32, channel_mult=[1, 2],
                     num_blocks=1, attn_resolutions=[8]).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x, sigma = torch.randn(2, 3, 16, 16), torch.tensor([1.0, 2.0])
    a, b = net(x, sigma, class_labels=torch.eye(10)[[0, 0]]), net(x, sigma, class_labels=torch.eye(10)[[0, 5]])
    assert torch.equal(a[0], b[0]) and not torch.allclose(a[1], b[1])  # the label changes the output
    with pytest.raises(ValueError, match="model_type must be one of"):
        EDMPrecond(16, 3, model_type="UNet2DModel")


def test_label_dropout_zeroes_whole_labels_only_while_training():
    from aid.edm.networks import drop_labels
    torch.manual_seed(0)
    labels = torch.ones(4000, 10)
    dropped = drop_labels(labels, 0.3, training=True)
    rows = dropped.sum(1)
    assert set(rows.unique().tolist()) == {0.0, 10.0}  # a label vector is kept or zeroed whole
    assert abs((rows == 0).float().mean().item() - 0.3) < 0.03
    assert drop_labels(labels, 0.3, training=False) is labels and drop_labels(labels, 0.0, True) is labels


@pytest.mark.parametrize("antithetic", [False, True])
def test_ddim_eta_steps_follow_their_formula_and_keep_seeds_per_image(antithetic):
    """sample(eta=η): DDIM(η) from the guided denoiser D' = D + σ·u, x' = D' + √(1−η²)(σ'/σ)(x − D') + η·σ'·z,
    then the projection; z from each image's own generator after the projection's draw (antithetic: every draw
    negated); η = 0 is the Euler step; image i depends on seed i only."""
    from aid.core.common import generators, randn_per_sample
    net, c, eta, sign = small_net(4), 0.02, 0.6, -1.0 if antithetic else 1.0
    y = torch.rand(2, 2, 16, 16) * 2 - 1
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., :5] = 1
    u = lambda x, sig, D, sn: torch.full_like(x, c)  # noqa: E731
    s = edm_sigmas(2, device="cpu", dtype=torch.float32)
    gens = generators([3, 4], "cpu")
    draw = lambda: sign * randn_per_sample(gens, (2, 16, 16), "cpu")  # noqa: E731
    x = s[0] * draw()
    for i in range(2):
        D = net(x, s[i].expand(2))
        z_known, z = draw(), draw()
        Dg = D + s[i] * c
        x = Dg + (1 - eta**2) ** 0.5 * (s[i + 1] / s[i]) * (x - Dg) + eta * s[i + 1] * z
        x = mask * (y + s[i + 1] * z_known) + (1 - mask) * x
    out = sample(net, [3, 4], num_steps=2, solver="euler", guidance=u, mask=mask, y=y, eta=eta, antithetic=antithetic)
    torch.testing.assert_close(out, x, rtol=1e-4, atol=1e-4)
    one = sample(net, [4], num_steps=2, solver="euler", guidance=u, mask=mask[1:], y=y[1:], eta=eta,
                 antithetic=antithetic)
    torch.testing.assert_close(one, out[1:], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sample(net, [3], num_steps=3, solver="euler", eta=0.0),
                               sample(net, [3], num_steps=3, solver="euler"), rtol=0, atol=0)
    for bad in (dict(eta=1.5, solver="euler"), dict(eta=0.5, solver="heun")):
        with pytest.raises(ValueError, match="eta must be in"):
            sample(net, [0], num_steps=2, **bad)
