"""The real-size DeepSeek-VL stand-in, one layer deep: real widths, tokenizer and image size through the app path."""

from __future__ import annotations

import threading

import pytest
import torch

from core.config import LimitsConfig
from core.generation.images import load_image
from core.generation.sampling import SamplingParams
from core.generation.vision import VisionRequest, plan_vision, stream_caption
from core.models.catalog import default_catalog
from core.serving.registry import ModelRegistry
from scripts.realsize_vl import IMAGE, MODEL_ID, NUM_IMAGE_TOKENS, build
from tests.independent_drawings import draw


@pytest.fixture(scope="module")
def realsize(tmp_path_factory, hardware):
    """Built once per run (~600M parameters, almost all DeepSeek's 129K-token embeddings), loaded in bf16."""
    folder = build(tmp_path_factory.mktemp("realsize") / "vl", text_layers=1, vision_layers=1)
    registry = ModelRegistry(default_catalog({MODEL_ID: str(folder)}), hardware)
    yield registry.get(MODEL_ID, "bf16")
    registry.unload(next(iter(registry.resident())).key)


def test_realsize_has_deepseek_vl_1_3b_widths_and_deepseeks_tokenizer(realsize):
    config = realsize.model.config
    vision, text = config.vision_config, config.text_config
    assert (vision.image_size, vision.patch_size, vision.hidden_size, vision.intermediate_size) == (384, 16, 1024, 4096)
    assert (text.hidden_size, text.intermediate_size, text.num_attention_heads) == (2048, 5504, 16)
    assert len(realsize.tokenizer) == 129_281 == text.vocab_size  # DeepSeek's 129,280 + the image token
    assert realsize.tokenizer.convert_tokens_to_ids(IMAGE) == config.image_token_id
    assert realsize.tokenizer.decode(realsize.tokenizer("DeepSeek-VL sees images.")["input_ids"],
                                     skip_special_tokens=True) == "DeepSeek-VL sees images."


def test_realsize_caption_path_carries_576_image_tokens_of_text_width(realsize):
    image = load_image(draw(7).image, LimitsConfig()).image  # not square: the processor pads it
    request = VisionRequest(image, style="detailed")
    plan, inputs = plan_vision(realsize, request, realsize.context_window, 4)
    assert inputs["pixel_values"].shape == (1, 3, 384, 384)
    assert int((inputs["input_ids"] == realsize.model.config.image_token_id).sum()) == NUM_IMAGE_TOKENS
    assert NUM_IMAGE_TOKENS < plan.prompt_tokens < NUM_IMAGE_TOKENS + 40
    with torch.inference_mode():
        features = realsize.model.model.get_image_features(inputs["pixel_values"].to(torch.bfloat16)).pooler_output
    assert features.shape == (1, NUM_IMAGE_TOKENS, 2048)
    stream = stream_caption(realsize, request, SamplingParams(max_new_tokens=4, temperature=0), threading.Event())
    "".join(stream)
    assert stream.stats.new_tokens == 4 and stream.stats.precision == "bf16"
