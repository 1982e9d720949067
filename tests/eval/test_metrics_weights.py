"""FID Inception and LPIPS loaded from weights files in the exact formats of pytorch-fid's
pt_inception-2015-12-05-6726825d.pth, torchvision's alexnet and lpips' v0.1 alex.pth (random
weights written to tmp_path), and the "skipped" strings of optional_metrics without weights."""
import math

import pytest
import torch
import torch.nn.functional as F

from aid.eval.fid_inception import FIDInceptionV3, inception_features, load_fid_inception
from aid.eval.lpips import load_lpips, lpips_distance
from aid.eval.metrics import SKIPPED, optional_metrics

ENV_VARS = ("AID_INCEPTION_WEIGHTS", "AID_LPIPS_BACKBONE", "AID_LPIPS_HEADS")
ALEX_CONVS = {0: (64, 3, 11), 3: (192, 64, 5), 6: (384, 192, 3), 8: (256, 384, 3), 10: (256, 256, 3)}


def _he_random_state(net: torch.nn.Module, seed: int) -> dict:
    """The net's state dict with He-normal conv weights, so activations stay O(1) through the depth."""
    g = torch.Generator().manual_seed(seed)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    for k, v in state.items():
        if k.endswith("weight") and v.dim() == 4:
            state[k] = torch.randn(v.shape, generator=g) * math.sqrt(2 / v[0].numel())
    return state


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(_he_random_state(FIDInceptionV3(), 0), path)
    return path


def _alexnet_state(seed: int) -> dict:
    """torchvision alexnet format: features.{0,3,6,8,10}.{weight,bias}, plus classifier.* (here tiny)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for i, (cout, cin, k) in ALEX_CONVS.items():
        state[f"features.{i}.weight"] = torch.randn(cout, cin, k, k, generator=g) * math.sqrt(2 / (cin * k * k))
        state[f"features.{i}.bias"] = 0.1 * torch.randn(cout, generator=g)
    state["classifier.1.weight"], state["classifier.6.bias"] = torch.zeros(4, 4), torch.zeros(4)
    return state


def _heads_state(seed: int) -> dict:
    """lpips v0.1 alex.pth format: lin{l}.model.1.weight [1, C_l, 1, 1], non-negative like the trained ones."""
    g = torch.Generator().manual_seed(seed)
    return {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) / c
            for i, c in enumerate((64, 192, 384, 256, 256))}


@pytest.fixture
def lpips_files(tmp_path):
    backbone, heads = tmp_path / "alexnet-owt-7be5be79.pth", tmp_path / "alex.pth"
    torch.save(_alexnet_state(1), backbone)
    torch.save(_heads_state(2), heads)
    return backbone, heads


def _images(n, channels, seed, size=32):
    g = torch.Generator().manual_seed(seed)
    return F.avg_pool2d(torch.rand(n, channels, size + 2, size + 2, generator=g) * 2 - 1, 3, 1)


def test_fid_inception_has_pytorch_fids_architecture():
    """torchvision's Inception3 has 27,161,264 parameters; without the aux head (3,326,696) and
    with 1008 classes (+16,392 in fc) that is 23,850,960."""
    state = FIDInceptionV3().state_dict()
    assert sum(v.numel() for k, v in state.items() if not k.endswith(("running_mean", "running_var", "tracked"))) \
        == 27_161_264 - 3_326_696 + 16_392
    assert state["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert state["Mixed_6e.branch7x7dbl_5.conv.weight"].shape == (192, 192, 1, 7)
    assert state["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)
    assert state["Mixed_7c.branch_pool.bn.running_var"].shape == (192,)
    assert state["fc.weight"].shape == (1008, 2048) and not any(k.startswith("AuxLogits") for k in state)


def test_fid_inception_features_from_a_weights_file(inception_file, monkeypatch):
    monkeypatch.setenv("AID_INCEPTION_WEIGHTS", str(inception_file))
    with pytest.warns(UserWarning, match="sha256 differs"):
        net = load_fid_inception()                             # path from the environment
    gray = _images(2, 1, 3)
    f = inception_features(gray, net, batch=1)
    assert f.shape == (2, 2048) and torch.isfinite(f).all() and f.std() > 1e-3
    assert torch.allclose(f, inception_features(gray.expand(-1, 3, -1, -1), net), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"need images \[N, 1 or 3, H, W\]"):
        net(torch.zeros(1, 2, 32, 32))


def test_strict_loading_names_renamed_and_missing_keys(inception_file, lpips_files, tmp_path):
    state = torch.load(inception_file, weights_only=True)
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # as saved by torch < 0.4.1
    torch.save(old, tmp_path / "old.pth")
    with pytest.warns(UserWarning, match="sha256 differs"):
        net = load_fid_inception(str(tmp_path / "old.pth"))
    assert torch.equal(net.Mixed_7c.branch_pool.conv.weight, state["Mixed_7c.branch_pool.conv.weight"])
    state["Mixed_5b.branch1x1.conv.weights"] = state.pop("Mixed_5b.branch1x1.conv.weight")
    torch.save(state, tmp_path / "renamed.pth")
    with pytest.raises(ValueError, match=r"FID Inception weights: .*missing keys \['Mixed_5b.branch1x1.conv.weight'\], "
                                         r"unexpected keys \['Mixed_5b.branch1x1.conv.weights'\]"):
        load_fid_inception(str(tmp_path / "renamed.pth"))
    backbone, heads = lpips_files
    bad = _heads_state(2)
    bad["lin4.model.0.weight"] = bad.pop("lin4.model.1.weight")
    torch.save(bad, tmp_path / "bad_heads.pth")
    with pytest.raises(ValueError, match=r"LPIPS v0.1 heads: .*missing keys \['lin4.model.1.weight'\]"):
        load_lpips(str(backbone), str(tmp_path / "bad_heads.pth"))
    bad = _alexnet_state(1)
    bad["features.3.weight"] = bad["features.3.weight"][:, :32]
    torch.save(bad, tmp_path / "bad_backbone.pth")
    with pytest.raises(ValueError, match=r"wrong shape .*features.3.weight: \[192, 32, 5, 5\] != \[192, 64, 5, 5\]"):
        load_lpips(str(tmp_path / "bad_backbone.pth"), str(heads))
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="is not a state dict"):
        load_lpips(str(tmp_path / "list.pth"), str(heads))
    (tmp_path / "text.pth").write_text("not a torch file")
    with pytest.raises(ValueError, match="LPIPS v0.1 heads: cannot read .* with weights_only=True"):
        load_lpips(str(backbone), str(tmp_path / "text.pth"))
    with pytest.raises(ValueError, match="does not exist"):
        load_lpips(str(tmp_path / "absent.pth"), str(heads))


def _lpips_by_hand(x, y, alex: dict, heads: dict) -> torch.Tensor:
    """LPIPS-alex v0.1 written out with functional ops on the raw file tensors."""
    def taps(t):
        t = (t.expand(-1, 3, -1, -1) - torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1)) \
            / torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)
        out = []
        for i, (stride, pad, pool) in zip(ALEX_CONVS, [(4, 2, True), (1, 2, True), (1, 1, False), (1, 1, False),
                                                        (1, 1, False)]):
            t = F.relu(F.conv2d(t, alex[f"features.{i}.weight"], alex[f"features.{i}.bias"], stride, pad))
            out.append(t / (t.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
            t = F.max_pool2d(t, 3, 2) if pool else t
        return out

    return sum((heads[f"lin{i}.model.1.weight"] * (a - b) ** 2).sum(1).mean((1, 2))
               for i, (a, b) in enumerate(zip(taps(x), taps(y))))


def test_lpips_matches_the_formula_on_the_file_weights(lpips_files, monkeypatch):
    backbone, heads = lpips_files
    monkeypatch.setenv("AID_LPIPS_BACKBONE", str(backbone))
    monkeypatch.setenv("AID_LPIPS_HEADS", str(heads))
    net = load_lpips()
    assert sum(p.numel() for p in net.features.parameters()) == 61_100_840 - 58_631_144  # alexnet minus classifier
    x, y = _images(3, 3, 4, size=40), _images(3, 3, 5, size=40)
    d = lpips_distance(x, y, net, batch=2)
    want = _lpips_by_hand(x, y, torch.load(backbone, weights_only=True), torch.load(heads, weights_only=True))
    assert d.shape == (3,) and (d > 0).all() and torch.allclose(d, want, rtol=1e-4)
    assert torch.allclose(lpips_distance(y, x, net), d, rtol=1e-5)
    assert torch.equal(lpips_distance(x, x, net), torch.zeros(3))
    with pytest.raises(ValueError, match="H >= 31"):
        net(torch.zeros(1, 3, 30, 40), torch.zeros(1, 3, 30, 40))
    monkeypatch.delenv("AID_LPIPS_HEADS")
    with pytest.raises(ValueError, match="need both the AlexNet backbone"):
        load_lpips(str(backbone))


def test_optional_metrics_with_weights(inception_file, lpips_files):
    backbone, heads = lpips_files
    x, y = _images(2, 1, 6), _images(2, 1, 7)
    with pytest.warns(UserWarning, match="cannot be compared"):
        m = optional_metrics(x, y, inception_weights=str(inception_file), lpips_backbone=str(backbone),
                             lpips_heads=str(heads))
    assert set(m) == {"fid", "kid", "kid_std", "lpips"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in m.values()), m
    assert m["fid"] > 0 and m["lpips"] > 0


def test_optional_metrics_without_weights_says_skipped(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    x = _images(2, 1, 8)
    assert optional_metrics(x, x) == dict(fid=SKIPPED, kid=SKIPPED, kid_std=SKIPPED, lpips=SKIPPED)
    assert SKIPPED == "skipped (no weights)"
