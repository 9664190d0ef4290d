"""Fixtures: offline, isolated caches, and the real bundled models loaded once per session."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from core.quant.gguf.converter import converter_dir  # noqa: E402 - imports neither transformers nor gradio

# llama.cpp's converter, fetched into the real cache by `make install-dev`: reused, never downloaded by a test
if (converter_dir() / "convert_hf_to_gguf.py").exists():
    os.environ.setdefault("LLAMA_CPP_CONVERTER", str(converter_dir()))
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

from core.config import AppConfig, LimitsConfig  # noqa: E402
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


# A 4K window keeps "document longer than the window" tests to seconds on 2 CPU cores.
# A 4 MB upload limit keeps the oversized-upload test to a few MB.
UI_CONFIG = AppConfig(limits=LimitsConfig(max_context_tokens=4096, max_upload_bytes=4_000_000))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def app_url(registry: ModelRegistry) -> Iterator[str]:
    """One running app for the UI and API tests (tabs, /chat, /caption and /v1), on a free loopback port."""
    from app import build_app, build_service, launch_kwargs

    service = build_service(registry, UI_CONFIG)
    demo = build_app(registry, UI_CONFIG, service)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_kwargs(service, UI_CONFIG))
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="session")
def engine(tmp_path_factory) -> Iterator[str]:
    """`transformers serve` over the bundled qwen2 checkpoint on loopback, once per run; its /v1 URL."""
    from core.paths import ASSETS
    from tests.remote_servers import transformers_serve

    with transformers_serve(ASSETS / "models" / "qwen2-tiny", tmp_path_factory.mktemp("serve") / "serve.log") as url:
        yield url
