"""Captions of the held-out drawings at fp32, int8 and int4 of the bundled DeepSeek-VL, side by side."""

from __future__ import annotations

import pytest

from core.config import LimitsConfig
from core.errors import EmptyInputError
from core.generation.images import load_image
from core.models.hardware import Precision
from core.quant.vision_comparison import compare_caption_precisions
from scripts.shapes import draw_scene, parse_attributes
from scripts.vision_eval import heldout_scenes
from tests.conftest import VISION_MODEL

N = 12


@pytest.fixture(scope="module")
def heldout():
    scenes = heldout_scenes(N, 41)
    images = [load_image(draw_scene(scene, side, seed), LimitsConfig()).image for scene, seed, side in scenes]
    return [scene for scene, _, _ in scenes], images


def test_int8_and_int4_captions_side_by_side_with_their_agreement(registry, heldout):
    scenes, images = heldout
    columns = compare_caption_precisions(registry, VISION_MODEL, ["int4", "int8", "fp32"], images)
    assert [c.precision for c in columns] == [Precision.FP32, Precision.INT4, Precision.INT8]  # full first, once
    full, int4, int8 = columns
    assert full.agreement is None and all(len(c.captions) == N and not c.error for c in columns)
    assert int8.agreement is not None and int8.agreement >= 0.9  # what test_quantize_vision holds per caption
    assert int4.agreement is not None and int4.agreement >= 0.5
    shapes_right = sum(parse_attributes(c)["shape"] == s.shape for c, s in zip(full.captions, scenes, strict=True))
    assert shapes_right >= 0.8 * N and all(c.images_per_s > 0 for c in columns)
    recount = sum(a == b for a, b in zip(full.captions, int4.captions, strict=True)) / N
    assert int4.agreement == pytest.approx(recount)


def test_a_precision_the_model_lacks_is_a_column_with_its_reason(registry, heldout):
    _, images = heldout
    columns = compare_caption_precisions(registry, VISION_MODEL, ["gptq-int4"], images[:2])
    assert columns[1].precision is Precision.GPTQ_INT4 and not columns[1].captions and columns[1].error
    assert columns[0].captions and columns[1].agreement is None


def test_no_images_is_refused_before_anything_loads(registry):
    with pytest.raises(EmptyInputError):
        compare_caption_precisions(registry, VISION_MODEL, ["int8"], [])
