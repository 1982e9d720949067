"""Loading official-format EDM snapshots (synthetic, written here) without executing them."""
import collections
import os
import pickle
import sys

import numpy as np
import pytest
import torch
from fakes import ModuleDictStandIn, Persistent, _fake_persistence_module

from aid.edm import EDMPrecond, convert, load

CONFIG = dict(img_resolution=16, img_channels=3, label_dim=0, use_fp16=False, model_type="SongUNet",
              model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8], dropout=0.0,
              augment_dim=9, embedding_type="fourier", encoder_type="residual", channel_mult_noise=2,
              resample_filter=[1, 3, 3, 1])


def write_snapshot(path, net, marker, extra_objects=None):
    """pickle.dump, protocol 4, of {ema, loss_fn, augment_pipe, dataset_kwargs} in EDM's persistent format."""
    fake = _fake_persistence_module(marker)
    src = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('the embedded source was executed')\n"

    def stand_in(module, init_kwargs=None):
        state = {"training": False, "_parameters": collections.OrderedDict(module._parameters),
                 "_buffers": collections.OrderedDict(module._buffers), "_non_persistent_buffers_set": set(),
                 "_modules": collections.OrderedDict((k, stand_in(v)) for k, v in module._modules.items())}
        if isinstance(module, torch.nn.ModuleDict):
            return ModuleDictStandIn(state)
        state.update(_init_args=(), _init_kwargs=init_kwargs or {}, skip_scale=np.float64(np.sqrt(0.5)))
        return Persistent({"type": "class", "version": 6, "module_src": src, "class_name": type(module).__name__,
                           "state": state})

    snapshot = {"ema": stand_in(net, dict(CONFIG)), "augment_pipe": None,
                "loss_fn": Persistent({"type": "class", "version": 6, "module_src": src, "class_name": "EDMLoss",
                                       "state": {"P_mean": -1.2, "P_std": 1.2, "sigma_data": 0.5}}),
                "dataset_kwargs": {"path": "datasets/ffhq-64x64.zip", "xflip": True}}
    snapshot.update(extra_objects or {})
    saved = {k: sys.modules.get(k) for k in fake}
    sys.modules.update(fake)
    try:
        with open(path, "wb") as f:
            pickle.dump(snapshot, f, protocol=4)
    finally:
        for k, v in saved.items():
            sys.modules.pop(k) if v is None else sys.modules.__setitem__(k, v)
    return fake


@pytest.fixture
def snapshot(tmp_path):
    torch.manual_seed(0)
    net = EDMPrecond(**CONFIG)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    marker = tmp_path / "EXECUTED"
    path = tmp_path / "edm-synthetic.pkl"
    fake = write_snapshot(path, net, marker)
    return net, str(path), marker, fake


def test_weights_load_strictly_and_the_embedded_source_never_runs(snapshot, tmp_path):
    net, path, marker, _ = snapshot
    loaded = load(path)
    assert not marker.exists(), "the loader executed the checkpoint's embedded source"
    want = net.state_dict()
    got = loaded.state_dict()
    assert got.keys() == want.keys() and "model.map_noise.freqs" in got  # NCSN++'s random Fourier buffer too
    for k in want:
        assert torch.equal(got[k], want[k]), k
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    x, sigma = torch.randn(2, 3, 16, 16), torch.tensor([0.5, 3.0])
    torch.testing.assert_close(loaded(x, sigma), net.eval()(x, sigma))
    out = str(tmp_path / "converted.safetensors")
    convert(path, out)
    for k, v in load(out).state_dict().items():
        assert torch.equal(v, want[k])
    assert not marker.exists()


def test_the_test_is_meaningful_a_plain_unpickle_does_execute_the_source(snapshot):
    _, path, marker, fake = snapshot
    saved = {k: sys.modules.get(k) for k in fake}
    sys.modules.update(fake)
    try:
        with open(path, "rb") as f:
            pickle.load(f)
    finally:
        for k, v in saved.items():
            sys.modules.pop(k) if v is None else sys.modules.__setitem__(k, v)
    assert marker.exists()


@pytest.mark.parametrize("evil, name", [(os.system, f"{os.system.__module__}.system"), (eval, "builtins.eval")])
def test_other_globals_are_refused_by_name(tmp_path, evil, name):
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"ema": evil}, f, protocol=4)
    with pytest.raises(ValueError, match=f"refusing to load global '{name}'"):
        load(str(path))


def test_truncated_and_wrong_files_give_clear_errors(snapshot, tmp_path):
    _, path, _, _ = snapshot
    data = open(path, "rb").read()
    cut = tmp_path / "truncated.pkl"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable EDM checkpoint"):
        load(str(cut))
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"\x00not a pickle at all")
    with pytest.raises(ValueError, match="not a readable EDM checkpoint"):
        load(str(garbage))
    no_ema = tmp_path / "no_ema.pkl"
    with open(no_ema, "wb") as f:
        pickle.dump({"loss_fn": None}, f, protocol=4)
    with pytest.raises(ValueError, match="expected a snapshot dict with key 'ema'"):
        load(str(no_ema))
