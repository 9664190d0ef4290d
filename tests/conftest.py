"""Fixtures: offline, isolated caches, and the real bundled models loaded once per session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before transformers / gradio are imported anywhere: never touch the network, never write to ~.
_HOME = Path(tempfile.mkdtemp(prefix="playground-tests-"))
os.environ.update({
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HOME": str(_HOME / "hf"),
    "GRADIO_ANALYTICS_ENABLED": "False",
    "GRADIO_TEMP_DIR": str(_HOME / "gradio"),
    "PLAYGROUND_CACHE": str(_HOME / "cache"),
})

import pytest  # noqa: E402
import torch  # noqa: E402

from core.config import AppConfig  # noqa: E402
from core.models.catalog import default_catalog  # noqa: E402
from core.models.hardware import Hardware, detect_hardware  # noqa: E402
from core.serving.registry import ModelRegistry  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))

TEXT_MODEL = "bundled/deepseek-v3-tiny"
DENSE_MODEL = "bundled/qwen2-tiny"
VISION_MODEL = "bundled/deepseek-vl-tiny"


@pytest.fixture(scope="session")
def hardware() -> Hardware:
    return detect_hardware()


@pytest.fixture(scope="session")
def registry(hardware: Hardware) -> ModelRegistry:
    """One registry for the whole run, as the app has one: each model loads once."""
    return ModelRegistry(default_catalog(), hardware)


@pytest.fixture(scope="session")
def cfg() -> AppConfig:
    return AppConfig()


@pytest.fixture(scope="session")
def deepseek(registry: ModelRegistry):
    return registry.get(TEXT_MODEL, "fp32")


@pytest.fixture(scope="session")
def qwen(registry: ModelRegistry):
    return registry.get(DENSE_MODEL, "fp32")


@pytest.fixture(scope="session")
def gptq4(registry: ModelRegistry):
    """The bundled DeepseekV3 GPTQ-quantized to 4 bits once per run (~30 s of calibration on 2 cores)."""
    return registry.get(TEXT_MODEL, "gptq-int4")
