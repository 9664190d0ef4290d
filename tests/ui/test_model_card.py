"""Model cards and availability in the picker, before anything is sent (no browser)."""

from __future__ import annotations

import pytest

from core.config import LimitsConfig
from core.errors import ModelUnavailableError
from core.generation.prompting import ChatRequest
from core.generation.sampling import SamplingParams
from core.serving.service import Service
from tests.conftest import TEXT_MODEL
from ui.controls import model_card, model_choices

HUB_MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"  # the tests run offline: never downloaded here


def test_bundled_models_say_they_are_tiny_demos_and_offline_hub_models_say_why_they_cannot_load(registry):
    labels = dict((value, label) for label, value in model_choices(registry, "text"))
    assert "tiny demo" in labels[TEXT_MODEL] and "unavailable" not in labels[TEXT_MODEL]
    assert "unavailable here" in labels[HUB_MODEL]
    card = model_card(registry, TEXT_MODEL)
    assert "Tiny demo checkpoint" in card and "mixture of experts" in card and "32,768 tokens" in card
    assert "fp32" in card and registry.hardware.describe() in card
    hub_card = model_card(registry, HUB_MODEL)
    assert "Unavailable here" in hub_card and "not reachable" in hub_card
    assert f"https://huggingface.co/{HUB_MODEL}" in hub_card


def test_an_unavailable_model_is_refused_before_anything_loads(registry):
    service = Service(registry, LimitsConfig())
    with pytest.raises(ModelUnavailableError, match="cannot load here.*not reachable"):
        service.stream(ChatRequest("hi"), HUB_MODEL, "fp32", SamplingParams())
