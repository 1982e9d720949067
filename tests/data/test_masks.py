"""Mask generators: shapes, polarity (1 = known), the rules of each kind, seeding, PNG files."""
import numpy as np
import pytest
import torch
from PIL import Image

from aid.data.masks import KINDS, benchmark_masks, make_mask, mask_from_png, masks


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_binary_seeded_and_has_a_hole(kind):
    m = masks(kind, 4, 32, seed=3)
    assert m.shape == (4, 1, 32, 32) and m.dtype == torch.float32
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    hole = 1 - m.mean(dim=(1, 2, 3))
    assert torch.all(hole > 0) and torch.all(hole < 1)
    assert torch.equal(m, masks(kind, 4, 32, seed=3))
    assert torch.equal(m[2], masks(kind, 3, 32, seed=3)[2])  # mask i does not depend on n


def test_the_rules_of_each_kind():
    assert make_mask("center_box", 32, 0).mean() == 0.75  # a 16×16 hole
    assert make_mask("center_box", 32, 0)[8:24, 8:24].max() == 0
    for frac in (50, 70, 90):
        assert (make_mask(f"pixels{frac}", 32, 1) == 0).sum() == int(frac / 100 * 32 * 32)
    assert make_mask("half_left", 32, 0)[:, :16].max() == 0 and make_mask("half_left", 32, 0)[:, 16:].min() == 1
    assert make_mask("half_bottom", 32, 0)[16:].max() == 0
    box = make_mask("random_box", 64, 5)
    rows, cols = np.where(box == 0)
    assert rows.max() - rows.min() + 1 == 32 and cols.max() - cols.min() + 1 == 32
    assert rows.min() >= 4 and cols.max() <= 59  # inside the margin res/16
    for variant in ("thick", "medium", "thin"):
        holes = [1 - make_mask(f"lama_{variant}", 64, s).mean() for s in range(8)]
        assert all(0 < h <= 0.5 for h in holes)


def test_benchmark_set_is_fixed_and_bad_input_is_refused():
    assert torch.equal(benchmark_masks("lama_medium", 3, 32), benchmark_masks("lama_medium", 3, 32))
    assert not torch.equal(benchmark_masks("random_box", 3, 32), masks("random_box", 3, 32, seed=0))
    with pytest.raises(ValueError, match="unknown mask kind 'circle'"):
        make_mask("circle", 32, 0)
    with pytest.raises(ValueError, match="resolution must be >= 8"):
        make_mask("center_box", 4, 0)


def test_png_masks_with_either_polarity(tmp_path):
    img = np.zeros((16, 16), np.uint8)
    img[:, :8] = 255  # left half white
    Image.fromarray(img).save(tmp_path / "m.png")
    repaint = mask_from_png(str(tmp_path / "m.png"))  # white = known
    lama = mask_from_png(str(tmp_path / "m.png"), known_is_white=False)  # white = hole
    assert repaint.shape == (1, 1, 16, 16) and repaint[..., :8].min() == 1 and repaint[..., 8:].max() == 0
    assert torch.equal(lama, 1 - repaint)
    assert mask_from_png(str(tmp_path / "m.png"), res=32).shape == (1, 1, 32, 32)
