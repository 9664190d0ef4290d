"""DeepSeek-VL at int8 and int4: the language model quantized, the vision tower left full, captions still right."""

from __future__ import annotations

import threading

import pytest
import torch

from core.config import LimitsConfig
from core.generation.images import load_image
from core.generation.sampling import SamplingParams
from core.generation.vision import VisionRequest, stream_caption
from core.models.hardware import Precision
from core.quant.backends import available_precisions, precision_note
from scripts.shapes import draw_scene
from scripts.vision_eval import heldout_scenes
from tests.conftest import VISION_MODEL

GREEDY = SamplingParams(max_new_tokens=40, temperature=0, repetition_penalty=1.0)


def captions(loaded, n: int = 20) -> list[str]:
    texts = []
    for scene, seed, side in heldout_scenes(n, 41):
        request = VisionRequest(load_image(draw_scene(scene, side, seed), LimitsConfig()).image, style="detailed")
        texts.append("".join(stream_caption(loaded, request, GREEDY, threading.Event())).strip())
    return texts


def test_vision_models_are_offered_int8_and_int4_with_a_note(registry):
    entry = registry.catalog.get(VISION_MODEL)
    offered = available_precisions(entry, registry.hardware)
    assert Precision.INT8 in offered and Precision.INT4 in offered
    assert Precision.GPTQ_INT4 not in offered  # GPTQModel's calibration is text-only
    assert "vision tower" in precision_note(entry, Precision.INT8)


@pytest.mark.parametrize("precision,min_agreement", [("int8", 0.9), ("int4", 0.6)])
def test_quantized_language_model_keeps_the_vision_tower_full_and_the_captions(registry, precision, min_agreement):
    full = captions(registry.get(VISION_MODEL, "fp32"))
    loaded = registry.get(VISION_MODEL, precision)
    vision_weights = [m.weight for m in loaded.model.model.vision_model.modules() if isinstance(m, torch.nn.Linear)]
    language = loaded.model.model.language_model.layers[0].mlp.down_proj
    assert all(type(w) is torch.nn.Parameter and w.dtype == torch.float32 for w in vision_weights)
    assert type(language.weight) is not torch.nn.Parameter  # a quantized tensor subclass (quanto / torchao)
    assert type(loaded.model.lm_head.weight) is torch.nn.Parameter  # lm_head stays full
    agreement = sum(a == b for a, b in zip(full, captions(loaded), strict=True)) / len(full)
    assert agreement >= min_agreement, f"{precision}: {agreement:.2f} of captions equal to fp32's"
