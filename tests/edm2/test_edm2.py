"""EDM2 networks (official parameter counts, magnitude preservation, precomputed weights, golden
values of NVlabs/edm2's own code, label shapes), autoguidance (an unconditional guide, NFE per
call), and loading an official-format EDM2 snapshot (synthetic, written here) safely."""
import collections
import pickle
import sys
import types

import numpy as np
import pytest
import torch
from fakes import ModuleDictStandIn, Persistent, _fake_persistence_module

from aid.edm2 import Denoiser, Precond, convert, load, load_edm2_pickle, one_hot
from aid.edm2.networks import MPConv, mp_cat, mp_silu, mp_sum

TINY = dict(img_resolution=8, img_channels=4, model_channels=16, channel_mult=[1, 2], num_blocks=1,
            attn_resolutions=[4], channels_per_head=8, use_fp16=True, logvar_channels=8)


@pytest.mark.parametrize("channels, label_dim, count", [
    (128, 1000, 124_713_253), (128, 0, 124_201_253), (192, 1000, 280_212_837), (192, 0, 279_444_837)],
    ids=["xs", "xs-uncond", "s", "s-uncond"])
def test_img512_xs_and_s_have_the_official_parameter_counts(channels, label_dim, count):
    """train_edm2.py presets edm2-img512-{xs,s}: channels 128/192 on 64×64×4 latents; the paper's
    Table 2 rounds these to 125M / 280M."""
    with torch.device("meta"):
        net = Precond(64, 4, label_dim, model_channels=channels)
    n = sum(p.numel() for p in net.parameters())
    assert n == count
    keys = net.state_dict().keys()
    assert {"unet.out_gain", "unet.enc.64x64_conv.weight", "unet.enc.32x32_block0.conv_skip.weight",
            "unet.enc.16x16_block0.attn_qkv.weight", "unet.dec.8x8_in0.attn_proj.weight",
            "unet.dec.64x64_block3.conv_skip.weight", "logvar_linear.weight", "unet.emb_fourier.phases"} <= keys
    assert ("unet.emb_label.weight" in keys) == (label_dim > 0)
    assert not any("w_hat" in k for k in keys)  # the precomputed weights never enter a checkpoint


def tiny_net(seed=0, label_dim=0, **kw):
    torch.manual_seed(seed)
    net = Precond(**{**TINY, **kw}, label_dim=label_dim)
    with torch.no_grad():  # EDM2 zero-initializes the gains; make the network do something
        for name, p in net.named_parameters():
            if name.endswith("gain"):
                p.fill_(0.5)
    return net.eval().requires_grad_(False)


def test_magnitude_preserving_primitives_keep_unit_variance():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 48, 32, 32, generator=g), torch.randn(4, 16, 32, 32, generator=g)
    for out in (mp_sum(a, a.roll(1, 0), 0.3), mp_cat(a, b, 0.5), mp_cat(a, b, 0.2)):
        assert abs(out.square().mean().item() - 1) < 0.03
    assert abs(mp_silu(a).square().mean().item() - 1) < 0.03
    conv = MPConv(48, 32, [3, 3])
    torch.testing.assert_close(conv.normalized_weight().flatten(1).norm(dim=1), torch.ones(32),
                               rtol=1e-3, atol=0)  # eps = 1e-4 in the norm
    assert abs(conv(a).square().mean().item() - 1) < 0.2  # unit-norm rows, ~independent inputs


def test_precomputed_weights_give_the_same_denoiser():
    net = tiny_net(label_dim=10)
    x, sigma, labels = torch.randn(3, 4, 8, 8), torch.tensor([0.05, 1.0, 40.0]), one_hot([1, 5, 9], 10)
    before = net(x, sigma, labels)
    net.precompute()
    assert all(m.w_hat is not None for m in net.modules() if isinstance(m, MPConv))
    torch.testing.assert_close(net(x, sigma, labels), before, rtol=1e-5, atol=1e-6)
    assert before.shape == x.shape and (before - x).abs().mean() > 1e-3
    assert not torch.allclose(net(x, sigma, one_hot([2, 5, 9], 10))[0], before[0])  # labels matter


def test_autoguidance_lerps_from_the_guide_and_conditional_nets_need_labels():
    net, gnet = tiny_net(0, label_dim=10), tiny_net(1, label_dim=10)
    x, sigma, labels = torch.randn(2, 4, 8, 8), torch.tensor([0.5, 2.0]), one_hot([3, 4], 10)
    D = Denoiser(net, gnet, guidance=2.5, class_labels=labels)
    D_net, D_gnet = net(x, sigma, labels), gnet(x, sigma, labels)
    torch.testing.assert_close(D(x, sigma), D_gnet + 2.5 * (D_net - D_gnet))
    with pytest.raises(ValueError, match="class-conditional"):
        Denoiser(net)(x, sigma)
    with pytest.raises(ValueError, match="needs a guide network"):
        Denoiser(net, guidance=2.0)
    with pytest.raises(ValueError, match="class indices"):
        one_hot([10], 10)


def test_a_conditional_net_takes_an_unconditional_guide():
    """EDM2's guid-{fid,dino} presets: a conditional net autoguided by an unconditional XS net."""
    net, gnet = tiny_net(0, label_dim=10), tiny_net(1, label_dim=0)
    x, sigma, labels = torch.randn(2, 4, 8, 8), torch.tensor([0.5, 2.0]), one_hot([3, 4], 10)
    torch.testing.assert_close(gnet(x, sigma, labels), gnet(x, sigma))  # label_dim = 0: labels ignored
    D = Denoiser(net, gnet, guidance=1.7, class_labels=labels)
    D_net, D_gnet = net(x, sigma, labels), gnet(x, sigma)
    torch.testing.assert_close(D(x, sigma), D_gnet + 1.7 * (D_net - D_gnet))
    with pytest.raises(ValueError, match=r"label_dim 0 or 10, got 5"):
        Denoiser(net, tiny_net(1, label_dim=5), guidance=2.0)
    with pytest.raises(ValueError, match="same images"):
        Denoiser(net, tiny_net(1, label_dim=10, img_channels=3), guidance=2.0)
    with pytest.raises(ValueError, match=r"label_dim 0, got 10"):  # an unconditional net, a conditional guide
        Denoiser(gnet, net, guidance=2.0)


def test_evals_per_call_counts_the_guide_in_every_report():
    """An autoguided call evaluates two networks: sample_aid's and the baselines' nfe (and vjp) say so."""
    from aid.baselines import METHODS
    from aid.guidance.networks import GuidanceModule
    from aid.guidance.sample import sample_aid
    net, gnet = tiny_net(0, label_dim=10), tiny_net(1, label_dim=0)
    labels = one_hot([3], 10)
    guided, plain = Denoiser(net, gnet, guidance=2.0, class_labels=labels), Denoiser(net, class_labels=labels)
    assert guided.evals_per_call == 2 and plain.evals_per_call == 1
    assert Denoiser(net, gnet, guidance=1.0, class_labels=labels).evals_per_call == 1  # g = 1 skips the guide
    y, mask = torch.randn(2, 4, 8, 8), torch.ones(2, 1, 8, 8)
    mask[:, :, 2:6, 2:6] = 0
    actor = GuidanceModule(4, width=8, depth=1, emb=8)
    for backbone, k in ((guided, 2), (plain, 1)):
        assert sample_aid(backbone, actor, y, mask, [0, 1], num_steps=3)[1]["nfe"] == 3 * k
        assert sample_aid(backbone, actor, y, mask, [0, 1], num_steps=3, solver="heun")[1]["nfe"] == 5 * k
        assert METHODS["ddnm"](backbone, y, mask, [0, 1], num_steps=3)[1] == {"nfe": 3 * k, "vjp": 0}
        assert METHODS["dps"](backbone, y, mask, [0, 1], num_steps=2, zeta=0.1)[1] == {"nfe": 2 * k, "vjp": 2 * k}


def test_class_labels_of_the_wrong_shape_are_refused():
    net = tiny_net(label_dim=10)
    x, sigma = torch.randn(3, 4, 8, 8), torch.tensor([0.5, 1.0, 2.0])
    torch.testing.assert_close(net(x, sigma, one_hot([4], 10)), net(x, sigma, one_hot([4, 4, 4], 10)))
    for bad in (torch.zeros(2, 10), torch.zeros(3, 5), torch.zeros(2, 5), torch.zeros(10), torch.zeros(1, 3, 10)):
        with pytest.raises(ValueError, match=r"class_labels must be \[1 or B, label_dim\] = \[1 or 3, 10\], got"):
            net(x, sigma, bad)


def golden_state(net):
    """Every tensor of net's state dict drawn in key order from one seeded generator (randn; phases
    rand·2π, freqs randn·2π, gains 0.5): depends only on the official keys and shapes."""
    g, sd = torch.Generator().manual_seed(2024), {}
    for k, v in sorted(net.state_dict().items()):
        w = torch.randn(v.shape, generator=g)
        if k.endswith("phases"):
            w = torch.rand(v.shape, generator=g) * 2 * np.pi
        elif k.endswith("freqs"):
            w = w * 2 * np.pi
        elif k.endswith("gain"):
            w = torch.full(v.shape, 0.5)
        sd[k] = w
    return sd


def test_forward_matches_nvlabs_edm2_golden_values():
    """D(x; σ, label) against numbers computed once, on CPU in float32, by NVlabs/edm2's own
    training/networks_edm2.py (commit 4bf8162, run outside this repository) with TINY's kwargs,
    label_dim 10, the state dict of golden_state() and the same x, σ and labels."""
    net = Precond(**{**TINY, "label_dim": 10})
    net.load_state_dict(golden_state(net), strict=True)
    net.eval().requires_grad_(False)
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(7))
    sigma, labels = torch.tensor([0.3, 7.0]), one_hot([0, 9], 10)
    want_00 = [-0.66137189, 0.20681679, 0.65543550, -1.04012942, -0.11079265, 0.18552399, -0.30878460, -0.64229488]
    want_137 = [-0.12822443, -0.01784135, -0.02855290, -0.01501587, -0.06404874, -0.05575643, -0.03969043,
                -0.07164813]  # σ = 7: D ≈ F/2, almost all network
    for precomputed in (False, True):
        D = net.precompute()(x, sigma, labels) if precomputed else net(x, sigma, labels)
        torch.testing.assert_close(D[0, 0, 0], torch.tensor(want_00), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(D[1, 3, 7], torch.tensor(want_137), rtol=1e-4, atol=1e-5)
        assert abs(D.double().sum().item() - 0.44664397) < 1e-3
        assert abs(D.double().abs().sum().item() - 165.656623) < 1e-3


def _fake_dnnlib():
    pkg, mod = types.ModuleType("dnnlib"), types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    mod.EasyDict, pkg.util = EasyDict, mod
    return {"dnnlib": pkg, "dnnlib.util": mod}


def write_edm2_snapshot(path, net, marker):
    """EDM2's training_loop.py snapshot: pickle.dump of an EasyDict {encoder, dataset_kwargs, loss_fn,
    ema} with ema cast to float16 and every network a persistent record carrying its source."""
    fake = {**_fake_persistence_module(marker), **_fake_dnnlib()}
    src = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('the embedded source was executed')\n"
    EasyDict = fake["dnnlib.util"].EasyDict

    def persistent(class_name, state):
        return Persistent({"type": "class", "version": 6, "module_src": src, "class_name": class_name, "state": state})

    def stand_in(module, init_kwargs=None):
        state = {"training": False, "_parameters": collections.OrderedDict(module._parameters),
                 "_buffers": collections.OrderedDict((k, v) for k, v in module._buffers.items() if k != "w_hat"),
                 "_non_persistent_buffers_set": set(),
                 "_modules": collections.OrderedDict((k, stand_in(v)) for k, v in module._modules.items())}
        if isinstance(module, torch.nn.ModuleDict):
            return ModuleDictStandIn(state)
        state.update(_init_args=(), _init_kwargs=init_kwargs or {})
        return persistent(type(module).__name__, state)

    raw_std = np.float32([4.17, 4.62, 3.71, 3.28])
    encoder = persistent("StabilityVAEEncoder", {"vae_name": "stabilityai/sd-vae-ft-mse", "scale": 0.5 / raw_std,
                                                 "bias": -np.float32([5.81, 3.25, 0.12, -2.15]) * 0.5 / raw_std,
                                                 "batch_size": 8, "_vae": None})
    snapshot = EasyDict(encoder=encoder, dataset_kwargs=EasyDict(path="img512-sd.zip", use_labels=True),
                        loss_fn=persistent("EDM2Loss", {"P_mean": -0.4, "P_std": 1.0, "sigma_data": 0.5}),
                        ema=stand_in(net.half(), dict(net.init_kwargs)))
    saved = {k: sys.modules.get(k) for k in fake}
    sys.modules.update(fake)
    try:
        with open(path, "wb") as f:
            pickle.dump(snapshot, f)
    finally:
        for k, v in saved.items():
            sys.modules.pop(k) if v is None else sys.modules.__setitem__(k, v)


def test_official_format_edm2_snapshot_loads_safely_and_strictly(tmp_path):
    net = tiny_net(label_dim=10)
    want = {k: v.clone() for k, v in net.state_dict().items()}
    marker, path = tmp_path / "EXECUTED", str(tmp_path / "edm2-img512-tiny-0000001-0.100.pkl")
    write_edm2_snapshot(path, net, marker)
    _, rest = load_edm2_pickle(path)
    assert rest["encoder"].class_name == "StabilityVAEEncoder" and rest["encoder"].state["scale"].dtype == np.float32
    loaded = load(path)
    assert not marker.exists(), "the loader executed the checkpoint's embedded source"
    got = loaded.state_dict()
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert got[k].dtype == torch.float32 and torch.equal(got[k], v.half().float()), k  # fp16 storage → fp32
    assert load(path, dtype=torch.float16).unet.emb_noise.weight.dtype == torch.float16
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert all(m.w_hat is not None for m in loaded.modules() if isinstance(m, MPConv))
    reference = Precond(**net.init_kwargs)
    reference.load_state_dict({k: v.half().float() for k, v in want.items()})
    x, sigma, labels = torch.randn(2, 4, 8, 8), torch.tensor([0.3, 7.0]), one_hot([0, 9], 10)
    torch.testing.assert_close(loaded(x, sigma, labels), reference.eval()(x, sigma, labels), rtol=1e-5, atol=1e-6)
    out = str(tmp_path / "converted.safetensors")
    convert(path, out)
    torch.testing.assert_close(load(out)(x, sigma, labels), loaded(x, sigma, labels), rtol=0, atol=0)
    assert not marker.exists()


def test_edm_snapshots_and_wrong_files_are_refused_with_clear_errors(tmp_path):
    path = tmp_path / "not-edm2.pkl"
    with open(path, "wb") as f:
        pickle.dump({"ema": {"a": 1}}, f, protocol=4)
    with pytest.raises(ValueError, match="only Precond backbones"):
        load(str(path))
    (tmp_path / "net.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="expected an official EDM2 .pkl or a .safetensors"):
        load(str(tmp_path / "net.pt"))
    with pytest.raises(TypeError, match="dtype must be a floating torch.dtype"):
        load_edm2_pickle(str(path), dtype="float16")
