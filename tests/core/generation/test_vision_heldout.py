"""The bundled DeepSeek-VL on images it never saw, through the app's caption path (load_image -> stream_caption).

Two held-out sets: drawings by tests/independent_drawings.py (code that shares nothing with the training
generator: numpy masks, web colours, 1:2 to 2:1 canvases of 320-640 px, outlines, noise, JPEG), scored on
colour and shape; and the training generator's own held-out scenes (odd draw seeds), scored on exact match.
"""

from __future__ import annotations

import threading

import pytest

from core.config import LimitsConfig
from core.generation.images import load_image
from core.generation.sampling import SamplingParams
from core.generation.vision import VisionRequest, stream_caption
from scripts.shapes import draw_scene, parse_attributes
from scripts.vision_eval import heldout_scenes
from tests.conftest import VISION_MODEL
from tests.independent_drawings import drawings

GREEDY = SamplingParams(max_new_tokens=40, temperature=0, repetition_penalty=1.0)
INDEPENDENT_SEED = 5000  # any seed works: the training script never imports tests/independent_drawings.py
HELDOUT_SEED = 13  # not the training script's validation (1) or test (2) seed


@pytest.fixture(scope="module")
def vision(registry):
    return registry.get(VISION_MODEL, "fp32")


def caption(loaded, image, style: str = "detailed") -> str:
    request = VisionRequest(load_image(image, LimitsConfig()).image, style=style)  # type: ignore[arg-type]
    return "".join(stream_caption(loaded, request, GREEDY, threading.Event())).strip()


@pytest.mark.xfail(strict=True, reason="issue 15 item 1: the bundled checkpoint is not retrained yet (0.39 colour, "
                   "0.17 shape on these 100 drawings); today's train_vision_model.py recipe gives 0.99 colour, 0.76 "
                   "shape here and old held-out exact 0.91/0.92 in 584-606 CPU-s (scripts/vision_goals.py); strict, so "
                   "a retrained one that passes turns this into a failure to remove")
def test_independent_drawings_get_colour_and_shape_right_at_least_90_percent(vision):
    held_out = drawings(100, INDEPENDENT_SEED)
    colour = shape = 0
    misses = []
    for drawing in held_out:
        text = caption(vision, drawing.image)
        got = parse_attributes(text)
        colour += got["colour"] == drawing.colour
        shape += got["shape"] == drawing.shape
        if (got["colour"], got["shape"]) != (drawing.colour, drawing.shape):
            misses.append(f"{drawing.note} -> {text!r}")
    n = len(held_out)
    assert colour / n >= 0.9 and shape / n >= 0.9, (
        f"colour {colour}/{n}, shape {shape}/{n}; first misses: " + "; ".join(misses[:4]))


@pytest.mark.parametrize("style", ["short", "detailed"])
def test_training_generators_heldout_captions_match_exactly_at_least_90_percent(vision, style):
    exact = 0
    scenes = heldout_scenes(100, HELDOUT_SEED)
    for scene, draw_seed, side in scenes:
        got = parse_attributes(caption(vision, draw_scene(scene, side, draw_seed), style))
        truth = scene.attributes(style)
        exact += all(got[a] == truth[a] for a in truth)
    assert exact / len(scenes) >= 0.9, f"{style}: {exact}/{len(scenes)} captions exactly right"
