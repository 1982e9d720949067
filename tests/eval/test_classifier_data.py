"""The FD_fmnist feature classifier, and image datasets (folders and EDM zips)."""
import json
import os
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from aid.core.checkpoint import save_module
from aid.data.datasets import image_dataset
from aid.eval.classifier import BUNDLED, accuracy, load_classifier, train_classifier


def test_classifier_learns_a_separable_problem_and_round_trips(tmp_path):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (512,), generator=g)
    x = torch.randn(512, 1, 32, 32, generator=g) * 0.3 + torch.where(y == 1, 0.5, -0.5).view(-1, 1, 1, 1)
    net = train_classifier(x, y, epochs=2, batch=64, progress=False)
    assert accuracy(net, x, y) > 0.95
    path = str(tmp_path / "clf.safetensors")
    save_module(net, path, "FashionClassifier", net.config, {"test_accuracy": 1.0})
    again = load_classifier(path)
    torch.testing.assert_close(again.features(x[:8]), net.features(x[:8]))
    assert again.features(x[:8]).shape == (8, 128)
    with pytest.raises(FileNotFoundError, match="python -m aid.eval.classifier"):
        load_classifier(str(tmp_path / "none.safetensors"))


@pytest.mark.skipif(not os.path.exists(BUNDLED), reason="the bundled classifier has not been trained yet")
def test_bundled_classifier_is_accurate_on_held_out_fashion_mnist():
    from aid.data.datasets import fashion_mnist
    try:
        x, y = fashion_mnist("test", 32)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    assert accuracy(load_classifier(), x[:2000], y[:2000]) >= 0.90


def _write_images(folder, n, mode="L", size=8):
    rng = np.random.default_rng(0)
    names = []
    for i in range(n):
        name = f"{i // 1000:05d}/img{i:08d}.png"
        os.makedirs(os.path.join(folder, os.path.dirname(name)), exist_ok=True)
        shape = (size, size) if mode == "L" else (size, size, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(os.path.join(folder, name))
        names.append(name)
    return names


def test_image_folder_and_edm_zip(tmp_path):
    folder = tmp_path / "imgs"
    names = _write_images(str(folder), 5, "RGB")
    x, labels = image_dataset(str(folder))
    assert x.shape == (5, 3, 8, 8) and labels is None and x.min() >= -1 and x.max() <= 1
    first = np.asarray(Image.open(folder / names[0])).transpose(2, 0, 1)
    assert torch.equal(((x[0] + 1) * 127.5).round().to(torch.uint8), torch.from_numpy(first))
    zpath = tmp_path / "ds.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_STORED) as z:
        for i, n in enumerate(names):
            z.write(folder / n, n)
        z.writestr("dataset.json", json.dumps({"labels": [[n, i % 3] for i, n in enumerate(names)]}))
    xz, lz = image_dataset(str(zpath), max_images=4)
    assert torch.equal(xz, x[:4]) and lz.tolist() == [0, 1, 2, 0]


def test_image_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a folder nor a zip"):
        image_dataset(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        image_dataset(str(tmp_path / "empty"))
    mixed = tmp_path / "mixed"
    _write_images(str(mixed), 2, "L", 8)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(mixed / "small.png")
    with pytest.raises(ValueError, match="differ in shape"):
        image_dataset(str(mixed))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot decode image broken.png"):
        image_dataset(str(bad))


def test_grid_png_layout_and_values(tmp_path):
    from aid.data.images import grid, save_grid
    x = torch.linspace(-1, 1, 5).view(5, 1, 1, 1).expand(5, 1, 2, 3).contiguous()
    g = grid(x, nrow=3)
    assert g.shape == (1, 2 * 3 + 1, 3 * 4 + 1)
    assert torch.equal(g[:, 1:3, 1:4], x[0]) and torch.equal(g[:, 4:6, 5:8], x[4])
    save_grid(x, str(tmp_path / "g.png"), nrow=3, scale=2)
    img = np.asarray(Image.open(tmp_path / "g.png"))
    assert img.shape == (14, 26) and img[2, 2] == 0 and img[2, 10] == 64  # -1 → 0, -0.5 → 64 (EDM's rounding)
