"""DEFT, the amortized h-transform baseline: the h network's zero start, sampling (shapes, seeds,
cost, exact agreement with the unconditional sampler at h ≡ 0, D_c = D − σh), its errors, and
training (a frozen backbone that never sees a gradient, exact resume after a kill, and on the
linear-Gaussian oracle a lower loss and samples nearer the exact posterior mean than paste)."""
import json

import pytest
import torch
from torch import nn

from aid.baselines import METHODS, paste
from aid.baselines.deft import HTransform, deft, deft_loss, train_deft
from aid.core.checkpoint import read_metadata, save_module
from aid.core.nn import n_params
from aid.data.masks import masks
from aid.edm import edm_sigmas, sample
from aid.eval.oracle import GaussianDenoiser, moments, random_covariance

SHAPE = (1, 8, 8)


def random_h(channels=1, **kw):
    """An h network moved off its zero start, so that it changes the samples."""
    torch.manual_seed(1)
    h = HTransform(channels, **kw)
    for layer in (h.conv_out, h.scale[-1]):
        nn.init.normal_(layer.weight, std=0.1)
        nn.init.normal_(layer.bias, std=0.1)
    return h.eval()


def inputs(B, res=16):
    g = torch.Generator().manual_seed(3)
    return torch.rand(B, 1, res, res, generator=g) * 2 - 1, masks("random_box", B, res)


class Spy(nn.Module):
    """A backbone wrapper that records whether autograd was on at each call, and dies at call `die_at`."""

    def __init__(self, net, die_at=None):
        super().__init__()
        self.net, self.die_at, self.grad_modes = net, die_at, []
        self.img_channels, self.img_resolution, self.sigma_data = net.img_channels, net.img_resolution, 0.5

    def forward(self, x, sigma):
        self.grad_modes.append(torch.is_grad_enabled())
        if len(self.grad_modes) == self.die_at:
            raise KeyboardInterrupt("killed")
        return self.net(x, sigma)


def test_h_starts_at_zero_is_small_and_trainable():
    h = HTransform(1)
    x, y = torch.randn(3, 1, 32, 32), torch.randn(3, 1, 32, 32)
    mask, sigma = masks("lama_medium", 3, 32), torch.tensor([0.002, 1.0, 80.0])
    out = h(x, sigma, y, mask, torch.randn_like(x))
    assert out.shape == x.shape and torch.equal(out, torch.zeros_like(out))
    out.square().add(out).sum().backward()
    assert h.conv_out.weight.grad.abs().sum() > 0 and h.scale[-1].weight.grad.abs().sum() > 0
    assert 10_000 < n_params(h) < 100_000  # a few tens of thousands, like AID's guidance module


def test_zero_h_is_exactly_the_unconditional_sampler_then_paste(tiny_edm):
    net, h = tiny_edm, HTransform(1)
    y, mask = inputs(3)
    x, report = deft(net, y, mask, [5, 6, 7], num_steps=6, h=h)
    assert torch.equal(x, paste(net, y, mask, [5, 6, 7], num_steps=6)[0])
    assert report == {"nfe": 6, "vjp": 0, "h_params": n_params(h)}
    x, report = deft(net, y, mask, [5, 6, 7], num_steps=4, h=h, solver="heun")
    unconditional = sample(net, [5, 6, 7], num_steps=4, solver="heun")
    assert torch.equal(x, mask * y + (1 - mask) * unconditional) and report["nfe"] == 7


def test_sampling_uses_D_minus_sigma_h_with_seeds_and_pasted_known_pixels(tiny_edm):
    net, h = tiny_edm, random_h()
    y, mask = inputs(4)
    x, _ = deft(net, y, mask, [0, 1, 2, 3], num_steps=5, h=h)
    assert x.shape == y.shape and torch.equal(mask * x, mask * y)
    assert not torch.equal(x, paste(net, y, mask, [0, 1, 2, 3], num_steps=5)[0])  # h changes the samples
    assert torch.equal(x, METHODS["deft"](net, y, mask, [0, 1, 2, 3], num_steps=5, h=h)[0])
    subset, _ = deft(net, y[2:], mask[2:], [2, 3], num_steps=5, h=h)
    torch.testing.assert_close(subset, x[2:], rtol=0, atol=1e-4)  # an image depends on its seed, not its batch
    sigmas = edm_sigmas(5, dtype=torch.float32)
    xi = sigmas[0] * torch.stack([torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(s)) for s in range(4)])
    with torch.no_grad():
        for i in range(5):  # the Euler step with D_c = D − σ·h, written out
            s = sigmas[i].expand(4)
            D = net(xi, s)
            D_c = D - s.view(-1, 1, 1, 1) * h(xi, s, mask * y, mask, D)  # h sees only m⊙y (issue 20)
            xi = xi + (sigmas[i + 1] - sigmas[i]) * (xi - D_c) / sigmas[i]
    torch.testing.assert_close(x, mask * y + (1 - mask) * xi, rtol=1e-5, atol=1e-5)


def test_bad_inputs(tiny_edm, tmp_path):
    net = tiny_edm
    y, mask = inputs(2)
    with pytest.raises(ValueError, match="python -m aid.baselines.deft"):
        deft(net, y, mask, [0, 1])
    with pytest.raises(FileNotFoundError, match="python -m aid.baselines.deft"):
        deft(net, y, mask, [0, 1], h=str(tmp_path / "missing.safetensors"))
    with pytest.raises(ValueError, match="built for 3-channel images"):
        deft(net, y, mask, [0, 1], h=HTransform(3))
    with pytest.raises(ValueError, match="solver must be"):
        deft(net, y, mask, [0, 1], h=HTransform(1), solver="rk4")
    with pytest.raises(ValueError, match="one seed per image"):
        deft(net, y, mask, [0], h=HTransform(1))
    save_module(HTransform(1), str(tmp_path / "other.safetensors"), "GuidanceModule", HTransform(1).config)
    with pytest.raises(ValueError, match="not a DEFTHTransform"):
        deft(net, y, mask, [0, 1], h=str(tmp_path / "other.safetensors"))
    data = torch.zeros(8, 1, 16, 16)
    with pytest.raises(ValueError, match="mask_kinds must be"):
        train_deft(net, data, str(tmp_path / "r"), mask_kinds=["square"], iters=1, progress=False)
    with pytest.raises(ValueError, match=r"data must be \[N, 1, 16, 16\]"):
        train_deft(net, data[:, :, :8], str(tmp_path / "r"), mask_kinds=["half_left"], iters=1, progress=False)
    train_deft(net, data, str(tmp_path / "r"), mask_kinds=["half_left"], iters=1, batch=2, masks_per_kind=1,
               progress=False)
    with pytest.raises(ValueError, match="different setup"):
        train_deft(net, data, str(tmp_path / "r"), mask_kinds=["half_left"], iters=2, batch=4, masks_per_kind=1,
                   progress=False)


def test_backbone_is_frozen_and_never_differentiated(tiny_edm, tmp_path):
    net = tiny_edm.train()  # trainable, as a caller might hand it over
    before = {k: v.clone() for k, v in net.state_dict().items()}
    spy = Spy(net)
    train_deft(spy, torch.rand(16, 1, 16, 16) * 2 - 1, str(tmp_path), mask_kinds=["center_box", "pixels70"],
               iters=3, batch=4, masks_per_kind=2, progress=False)
    assert spy.grad_modes == [False] * 3  # every backbone call under no_grad
    assert not net.training and all(not p.requires_grad and p.grad is None for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.fixture(scope="module")
def oracle():
    """A correlated 64-d Gaussian on 8×8 images, training data drawn from it, the left half known."""
    cov = random_covariance(64, seed=4, decay=2.0)
    net = GaussianDenoiser(torch.zeros(64, dtype=torch.float64), cov, SHAPE)
    L = torch.linalg.cholesky(cov)
    g = torch.Generator().manual_seed(0)
    data = (torch.randn(4096, 64, dtype=torch.float64, generator=g) @ L.T).float().reshape(-1, *SHAPE)
    y = (L @ torch.randn(64, dtype=torch.float64, generator=g)).reshape(SHAPE).float()
    return net, data, y, masks("half_left", 1, 8)


def test_resume_after_a_kill_is_bitwise_the_uninterrupted_run(oracle, tmp_path):
    net, data, _, _ = oracle
    kw = dict(mask_kinds=["half_left", "pixels50"], iters=6, batch=8, masks_per_kind=2, snapshot_every=2,
              h_kwargs=dict(width=16), progress=False)
    whole = train_deft(net, data, str(tmp_path / "a"), **kw)
    with pytest.raises(KeyboardInterrupt):
        train_deft(Spy(net, die_at=5), data, str(tmp_path / "b"), **kw)  # dies in iteration 5, after a snapshot at 4
    assert read_metadata(str(tmp_path / "b" / "h.safetensors"))[2]["iter"] == 4
    resumed = train_deft(net, data, str(tmp_path / "b"), **kw)
    for (k, p), q in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), k
    state_a, state_b = (torch.load(tmp_path / r / "state.pt", weights_only=False) for r in "ab")
    assert all(torch.equal(state_a["h"][k], state_b["h"][k]) for k in state_a["h"])


@pytest.fixture(scope="module")
def trained(oracle, tmp_path_factory):
    net, data, _, _ = oracle
    run = tmp_path_factory.mktemp("deft")
    h = train_deft(net, data, str(run), mask_kinds=["half_left"], iters=100, batch=64, lr=1e-2, masks_per_kind=1,
                   h_kwargs=dict(width=16), progress=False)
    return h, run


def test_training_reduces_the_loss_on_the_oracle(oracle, trained):
    net, data, _, mask = oracle
    h, run = trained
    x0 = data[-512:]
    ms = mask.expand(512, 1, 8, 8)
    loss = lambda module: deft_loss(net, module, x0, ms, torch.Generator().manual_seed(9))  # noqa: E731
    with torch.no_grad():
        assert loss(h) < 0.7 * loss(HTransform(1, width=16))
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in log] == [50, 100] and all(r["loss"] > 0 for r in log)
    kind, config, extra = read_metadata(str(run / "h.safetensors"))
    assert kind == "DEFTHTransform" and config["width"] == 16 and extra["iter"] == 100


def test_trained_deft_lands_nearer_the_posterior_mean_than_paste(oracle, trained):
    net, _, y, mask = oracle
    h, run = trained
    B = 500
    ys, ms = y.expand(B, *SHAPE), mask.expand(B, 1, 8, 8)
    x_deft, report = deft(net, ys, ms, list(range(B)), num_steps=18, h=str(run / "h.safetensors"))
    assert torch.equal(x_deft, deft(net, ys, ms, list(range(B)), num_steps=18, h=h)[0])  # file = module
    x_paste, _ = paste(net, ys, ms, list(range(B)), num_steps=18)
    post_mean, _ = net.posterior(mask[0], y)
    hole = ~mask[0].expand(SHAPE).reshape(-1).bool()
    err = {name: (moments(x)[0] - post_mean)[hole].norm().item() for name, x in [("deft", x_deft), ("paste", x_paste)]}
    assert err["deft"] < 0.7 * err["paste"], err
    assert report["nfe"] == 18 and report["vjp"] == 0
