"""Issue 20: image and mask files as users have them. 16-bit PNGs are scaled to 8 bits, not clipped; grey
images with alpha (LA) or a grey palette (P) are grey; unreadable files are named; PNGs are written
atomically (a failed write leaves the old file, or none, never half a PNG)."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from aid.data.datasets import _decode, image_dataset
from aid.data.images import save_png
from aid.data.masks import mask_from_png


def _bytes(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_16_bit_grey_pngs_are_scaled_not_clipped(tmp_path):
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)  # 0, 257, ..., 65535: every 8-bit level
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")  # what a 16-bit grey PNG opens as
    a = _decode(_bytes(tmp_path / "g16.png"), "g16.png")
    assert a.shape == (1, 16, 16) and a.dtype == np.uint8
    assert np.array_equal(a[0], np.arange(256, dtype=np.uint8).reshape(16, 16))
    x, _ = image_dataset(str(tmp_path))
    assert torch.equal(x[0, 0], torch.from_numpy(a[0].copy()).float().div(127.5).sub(1))


def test_16_bit_masks_are_thresholded_at_half_intensity(tmp_path):
    m = np.full((8, 8), 65535, np.uint16)
    m[:, :4] = 1000  # dark (1.5 % of white): a hole, though above 128 as a number
    Image.fromarray(m).save(tmp_path / "m16.png")
    mask = mask_from_png(str(tmp_path / "m16.png"))
    assert mask[..., :4].max() == 0 and mask[..., 4:].min() == 1


@pytest.mark.parametrize("mode", ["LA", "P", "P+transparency"])
def test_grey_with_alpha_or_a_grey_palette_is_grey(tmp_path, mode):
    grey = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    img = Image.fromarray(grey).convert(mode[0] if mode.startswith("P") else mode)  # L → P keeps a grey palette
    img.save(tmp_path / "g.png", **({"transparency": 0} if mode.endswith("transparency") else {}))
    assert Image.open(tmp_path / "g.png").mode == mode.split("+")[0]
    a = _decode(_bytes(tmp_path / "g.png"), "g.png")
    assert a.shape == (1, 8, 8) and np.array_equal(a[0], grey)


def test_a_colour_palette_stays_colour(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).convert("P").save(tmp_path / "c.png")
    assert _decode(_bytes(tmp_path / "c.png"), "c.png").shape == (3, 8, 8)


def test_a_truncated_mask_is_named(tmp_path):
    Image.fromarray(np.full((64, 64), 255, np.uint8)).save(tmp_path / "m.png")
    data = _bytes(tmp_path / "m.png")
    (tmp_path / "trunc.png").write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="trunc.png"):
        mask_from_png(str(tmp_path / "trunc.png"))


def test_save_png_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    save_png(torch.zeros(1, 4, 4), str(path))
    before = _bytes(path)

    def full_disk(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG")  # the first bytes, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_png(torch.ones(1, 4, 4), str(path))
    with pytest.raises(OSError, match="No space left"):
        save_png(torch.ones(1, 4, 4), str(tmp_path / "new.png"))
    assert _bytes(path) == before and sorted(os.listdir(tmp_path)) == ["out.png"]  # no half PNG, no temp file
