"""On a Space the defaults are spaces_config.yaml's real DeepSeek models per hardware; locally nothing changes."""

from __future__ import annotations

import pytest

from core.config import AppConfig
from core.models.hardware import Hardware
from core.space.config import load_space_config
from core.space.runtime import preload_defaults, with_space_defaults
from tests.conftest import TEXT_MODEL, VISION_MODEL

CPU = Hardware("cpu", "2 threads", 16 << 30, False)
T4 = Hardware("cuda", "Tesla T4", 16 << 30, False)  # a description: no CUDA here


def test_locally_the_bundled_defaults_and_loopback_host_stay():
    assert with_space_defaults(AppConfig(), CPU, environ={}) == AppConfig()


@pytest.mark.parametrize(("hardware", "environ", "tier"), [
    (CPU, {"SPACE_ID": "me/app"}, "cpu"),
    (T4, {"SPACE_ID": "me/app"}, "gpu"),
    (T4, {"SPACE_ID": "me/app", "SPACES_ZERO_GPU": "true"}, "zero_gpu"),
])
def test_on_a_space_defaults_come_from_spaces_config_for_its_hardware(hardware, environ, tier):
    space = load_space_config()
    cfg = with_space_defaults(AppConfig(), hardware, space, environ)
    expected = space.models.for_tier(tier)
    assert (cfg.models.default_text, cfg.models.default_vision) == (expected.text, expected.vision)
    assert cfg.server.host == "0.0.0.0" and cfg.limits == AppConfig().limits


def test_preload_happens_only_on_zerogpu_and_skips_what_cannot_load(registry):
    cfg = AppConfig()  # the bundled text and vision defaults
    assert preload_defaults(registry, cfg, environ={}) == []
    assert preload_defaults(registry, cfg, environ={"SPACES_ZERO_GPU": "true"}) == [TEXT_MODEL, VISION_MODEL]
    assert any(m.key.model_id == TEXT_MODEL for m in registry.resident())
