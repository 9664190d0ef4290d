"""The training generator's position curriculum (scripts/shape_variety.py): jitter 0 puts a lone shape on a patch
corner of the model's padded, resized view; jitter 1 leaves it where it was drawn. Its layouts' patch maps (the
dense labels of stage 1), and stage 1's pool of mirrored images (scripts/train_vision_model.py)."""

from __future__ import annotations

import argparse
import random

import numpy as np
import pytest
import torch

from scripts.shape_variety import Layout, Variety, _toward_patch_corners, varied_layout
from scripts.shapes import ShapeScene
from scripts.train_vision_model import ImageStream, build_processor, build_tokenizer


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


def test_patch_map_marks_the_patches_a_lone_shape_reaches_in_the_padded_view():
    # A 100 x 200 canvas is padded to 200 x 200 (50 px each side): patches are 50 px; a shape at canvas
    # (25, 60) sits at view (75, 60), inside patch row 1, column 1, and reaches 10 px into row 0 above.
    layout = Layout((100, 200), 14.0, [(25.0, 60.0)])
    assert layout.patch_map(4) == [[False, True, False, False], [False, True, False, False],
                                   [False, False, False, False], [False, False, False, False]]
    assert layout.patch_map(4, reach=0.5) == [[False] * 4, [False, True, False, False], [False] * 4, [False] * 4]


def test_mirrored_pool_images_swap_left_and_right_and_flip_their_dense_labels():
    processor = build_processor(build_tokenizer(0))
    args = argparse.Namespace(vision_varied_share=1.0, vision_lone_share=1.0, vision_plain_share=0.0,
                              vision_fresh=4, vision_pool=4)
    stream = ImageStream(processor, random.Random(7), args)
    drawn, seen = [], []
    for _ in range(6):
        scenes, pixels, dense = stream.batch(8, 1.0)
        drawn += [(s, p, d) for s, p, d in zip(scenes[:4], pixels[:4], dense[:4], strict=True)]
        seen += list(zip(scenes, pixels, dense, strict=True))
    flipped = 0
    for scene, pixels, dense in seen:
        for original, original_pixels, original_dense in drawn:
            if torch.equal(pixels, original_pixels.flip(-1)) and not torch.equal(pixels, original_pixels):
                flipped += 1
                assert scene.position == {"left": "right", "right": "left"}.get(original.position, original.position)
                assert torch.equal(dense.view(4, 4), original_dense.view(4, 4).flip(-1))
    assert flipped > 0


def test_variety_can_make_every_plain_background_dark_and_every_shape_a_hollow_outline():
    scene = ShapeScene("square", "yellow", "large", 1, "center", "plain")
    for seed in range(20):
        image, _, layout = varied_layout(scene, seed, variety=Variety(dark=1.0, outlined=1.0, thin=True))
        pixels = np.asarray(image, dtype=float)
        (cx, cy), r = layout.centres[0], layout.radius
        inside = pixels[round(cy - r / 3):round(cy + r / 3), round(cx - r / 3):round(cx + r / 3)].mean((0, 1))
        corner = pixels[:3, :3].mean((0, 1))
        assert corner.max() < 100, f"seed {seed}: background {corner}"
        assert np.abs(inside - corner).max() < 40, f"seed {seed}: the square is filled ({inside} inside)"
