"""Fashion-MNIST reading (on synthetic IDX files), checkpoints, and EDM training with exact resume."""
import gzip
import os

import pytest
import torch

from aid.core.checkpoint import read_metadata
from aid.data.datasets import fashion_mnist, read_idx, to_uint8
from aid.edm import load, sample
from aid.edm.train import edm_loss, ema_beta, train

TINY = dict(img_resolution=8, img_channels=1, model_channels=8, channel_mult=[1, 2], num_blocks=1,
            attn_resolutions=[4], dropout=0.0)


def test_fashion_mnist_pads_to_32_in_minus_one_to_one(fake_fmnist):
    x, y = fashion_mnist("test", 32, root=fake_fmnist)
    raw = read_idx(os.path.join(fake_fmnist, "t10k-images-idx3-ubyte.gz"))
    assert x.shape == (10, 1, 32, 32) and y.shape == (10,) and y.dtype == torch.int64
    assert x.min() >= -1 and x.max() <= 1
    assert torch.all(x[:, :, :2] == -1) and torch.all(x[:, :, :, -2:] == -1)
    assert torch.equal(to_uint8(x[:, 0, 2:30, 2:30]), torch.from_numpy(raw.copy()))  # round trip of the pixels


def test_fashion_mnist_errors(fake_fmnist, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        fashion_mnist("val", root=fake_fmnist)
    with pytest.raises(ValueError, match="resolution must be 28"):
        fashion_mnist("train", 31, root=fake_fmnist)
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        read_idx(str(bad))
    monkeypatch.setenv("PATH", "")  # no dpkg, no env var: the error names the install command
    monkeypatch.delenv("AID_FASHION_MNIST", raising=False)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist("train")


def test_edm_loss_is_lambda_weighted_denoising_error():
    """With every weight zero the network outputs F = 0, so D = c_skip·(x0 + σn); for x0 = 0 the loss is
    mean over samples of λ(σ)·c_skip²·σ²·n² = σd²/(σ² + σd²)·n², with σ and n drawn as edm_loss draws them."""
    from aid.edm import EDMPrecond
    net = EDMPrecond(**TINY)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    x0 = torch.zeros(16, 1, 8, 8)
    loss = edm_loss(net, x0, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    sigma = (torch.randn(16, generator=g) * 1.2 - 1.2).exp()
    n = torch.randn(x0.shape, generator=g)
    want = (0.25 / (sigma**2 + 0.25)).view(-1, 1, 1, 1) * n.square()
    torch.testing.assert_close(loss, want.mean(), rtol=1e-5, atol=1e-6)
    assert ema_beta(64, 0, 1000) == 0.0 and ema_beta(64, 10**6, 1000) == 0.5 ** (64 / 1000)


def test_training_resumes_exactly_and_writes_a_loadable_checkpoint(tmp_path):
    data = torch.rand(32, 1, 8, 8) * 2 - 1
    whole = train(data, str(tmp_path / "a"), TINY, batch=4, iters=6, progress=False)
    train(data, str(tmp_path / "b"), TINY, batch=4, iters=3, progress=False)  # "killed" after 3 iterations
    resumed = train(data, str(tmp_path / "b"), TINY, batch=4, iters=6, progress=False)
    for p, q in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(p, q)
    path = str(tmp_path / "b" / "ema.safetensors")
    kind, config, extra = read_metadata(path)
    assert kind == "EDMPrecond" and config["model_channels"] == 8 and extra["iter"] == 6
    net = load(path)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert sample(net, [0, 1], num_steps=3).shape == (2, 1, 8, 8)


def test_warm_start_continues_from_an_ema_file_and_refuses_another_config(tmp_path):
    data = torch.rand(32, 1, 8, 8) * 2 - 1
    first = train(data, str(tmp_path / "a"), TINY, batch=4, iters=3, progress=False)
    ema_file = str(tmp_path / "a" / "ema.safetensors")
    cont = train(data, str(tmp_path / "b"), TINY, batch=4, iters=5, progress=False, init_from=ema_file, lr=0.0)
    _, _, extra = read_metadata(str(tmp_path / "b" / "ema.safetensors"))
    assert extra["iter"] == 5  # the count goes on from the file's 3
    for p, q in zip(first.state_dict().values(), cont.state_dict().values()):
        assert torch.equal(p, q)  # lr 0: raw weights stay those loaded, so the EMA stays too
    with pytest.raises(ValueError, match="warm start"):
        train(data, str(tmp_path / "c"), dict(TINY, model_channels=16), batch=4, iters=4, progress=False,
              init_from=ema_file)


def test_load_refuses_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(str(tmp_path / "missing.safetensors"))
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load(str(trunc))
    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    with pytest.raises(ValueError, match="expected an official EDM .pkl or a .safetensors checkpoint"):
        load(str(other))


def test_a_diverging_backbone_run_stops_and_keeps_its_last_snapshot(tmp_path):
    """Issue 20: a non-finite loss stops the run before anything of its iteration is written; the error says
    what to do; the run resumes with a lower --lr (which the resumed optimizer then uses)."""
    from aid.core.training import run_iterations
    snapshots = []
    losses = iter([1.0, 0.5, float("nan"), 0.1])
    with pytest.raises(FloatingPointError,
                       match=r"loss is nan at iteration 3: .*last snapshot \(iteration 2\) is kept; lower it"):
        run_iterations(lambda it: torch.tensor(next(losses)), lambda it, s: snapshots.append(it), it=0, iters=4,
                       seconds=0.0, log_path=str(tmp_path / "log.jsonl"), desc="t", progress=False, snapshot_every=1,
                       on_divergence="lower it")
    assert snapshots == [1, 2] and len(open(tmp_path / "log.jsonl").readlines()) == 0  # log_every 50
    data = torch.rand(32, 1, 8, 8) * 2 - 1
    train(data, str(tmp_path / "r"), TINY, batch=4, iters=2, progress=False)
    good = (tmp_path / "r" / "ema.safetensors").read_bytes()
    with pytest.raises(FloatingPointError, match="lower --lr"):
        train(data, str(tmp_path / "r"), TINY, batch=4, iters=40, lr=1e30, progress=False)
    assert (tmp_path / "r" / "ema.safetensors").read_bytes() == good  # 500 iterations per snapshot: still 2
    train(data, str(tmp_path / "r"), TINY, batch=4, iters=3, lr=1e-4, progress=False)
    state = torch.load(tmp_path / "r" / "state.pt", weights_only=False)
    assert state["iter"] == 3 and state["opt"]["param_groups"][0]["lr"] == 1e-4
