"""The training generator's position curriculum (scripts/shape_variety.py): jitter 0 puts a lone shape on a patch
corner of the model's padded, resized view; jitter 1 leaves it where it was drawn."""

from __future__ import annotations

import pytest

from scripts.shape_variety import _toward_patch_corners


@pytest.mark.parametrize("size", [(200, 100), (90, 180), (128, 128)])
def test_jitter_zero_lands_on_a_patch_corner_of_the_square_view(size):
    long_side = max(size)
    pad_x, pad_y = (long_side - size[0]) / 2, (long_side - size[1]) / 2
    [(x, y)] = _toward_patch_corners([(size[0] * 0.37, size[1] * 0.61)], 5.0, size, 0.0, grid=4)
    step = long_side / 4
    assert ((x + pad_x) / step) % 1 == pytest.approx(0) and ((y + pad_y) / step) % 1 == pytest.approx(0)
    assert 1 <= (x + pad_x) / step <= 3 and 1 <= (y + pad_y) / step <= 3


def test_jitter_one_keeps_the_drawn_centre_and_a_big_shape_stays_inside():
    assert _toward_patch_corners([(41.0, 27.0)], 5.0, (100, 60), 1.0, grid=4) == [(41.0, 27.0)]
    [(x, y)] = _toward_patch_corners([(50.0, 30.0)], 28.0, (100, 60), 0.0, grid=4)
    assert 29 <= x <= 71 and 29 <= y <= 31
