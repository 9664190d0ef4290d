"""A second Playground process as the remote engine: its own /v1 (the OpenAI-compatible API) behind this one's
Service, found by `--remote URL` discovery, answering exactly as the same model does here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import LimitsConfig
from core.generation.prompting import ChatRequest
from core.generation.sampling import SamplingParams
from core.models.catalog import default_catalog
from core.paths import ROOT
from core.serving.events import Finished, TextDelta
from core.serving.registry import ModelRegistry
from core.serving.remotes import build_hub
from core.serving.service import Service
from tests.conftest import TEXT_MODEL, free_port
from tests.remote_servers import wait_ready

GREEDY = SamplingParams(max_new_tokens=16, temperature=0, repetition_penalty=1.0)
REQUEST = ChatRequest("What does the for statement do?")


@pytest.fixture(scope="module")
def playground_v1(tmp_path_factory) -> str:
    """`python app.py` on a free loopback port (the /v1 routes are on by default off ZeroGPU); its /v1 URL."""
    port = free_port()
    log = Path(tmp_path_factory.mktemp("second")) / "app.log"
    env = {k: v for k, v in os.environ.items() if k not in ("SPACES_ZERO_GPU", "SPACE_ID", "PLAYGROUND_API_KEY")}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models", proc, 240)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(30)


def text_of(events) -> tuple[str, list]:
    events = list(events)
    return "".join(e.text for e in events if isinstance(e, TextDelta)), events


def test_a_second_playground_serves_as_a_remote_and_answers_like_the_local_model(hardware, playground_v1):
    hub = build_hub([], [playground_v1])
    remote_id = f"remote/{TEXT_MODEL}"
    assert hub.serves(remote_id) and not hub.down, hub.down
    registry = ModelRegistry(default_catalog(), hardware, memory_budget_bytes=1 << 40)
    service = Service(registry, LimitsConfig(), remotes=hub)
    remote_text, events = text_of(service.stream(REQUEST, remote_id, "fp32", GREEDY))
    local_text, _ = text_of(service.stream(REQUEST, TEXT_MODEL, "fp32", GREEDY))
    assert isinstance(events[-1], Finished) and remote_text.strip()
    assert remote_text == local_text  # same weights, greedy: the same answer through the remote's own /v1
    assert all(m.key.model_id != remote_id for m in registry.resident())  # never loaded here
