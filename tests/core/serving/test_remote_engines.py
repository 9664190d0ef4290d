"""Remote models against a real third-party engine: `transformers serve` over the bundled qwen2 checkpoint, started
once per run on loopback (tests/conftest.py `engine`; continuous batching off: it fails on MLA models)."""

from __future__ import annotations

import threading
import time

import pytest

from core.config import LimitsConfig, RemoteModelConfig
from core.errors import ModelUnavailableError
from core.generation.prompting import ChatRequest
from core.generation.sampling import SamplingParams
from core.models.catalog import default_catalog
from core.paths import ASSETS
from core.serving.registry import ModelRegistry
from core.serving.remotes import build_hub
from core.serving.service import Finished, Service, TextDelta
from tests.conftest import DENSE_MODEL

CHECKPOINT = ASSETS / "models" / "qwen2-tiny"
GREEDY = SamplingParams(max_new_tokens=12, temperature=0.0)


@pytest.fixture(scope="module")
def service(engine, hardware):
    hub = build_hub([RemoteModelConfig("remote/qwen2-tiny", engine, str(CHECKPOINT), max_concurrency=8),
                     RemoteModelConfig("remote/wrong", engine, "deepseek-ai/DeepSeek-V3")])
    local = ModelRegistry(default_catalog(), hardware)
    yield Service(local, LimitsConfig(), remotes=hub)
    hub.close()


def run(service: Service, model_id: str, text: str = "What does a list comprehension do?",
        params: SamplingParams = GREEDY, stop: threading.Event | None = None) -> tuple[str, Finished]:
    events = list(service.stream(ChatRequest(text), model_id, "fp32", params, stop=stop))
    assert isinstance(events[-1], Finished)
    return "".join(e.text for e in events if isinstance(e, TextDelta)), events[-1]


def test_the_engine_answers_as_the_same_checkpoint_does_here(service):
    remote_text, done = run(service, "remote/qwen2-tiny")
    local_text, _ = run(service, DENSE_MODEL)
    assert done.stats.new_tokens == 12 and done.stats.prompt_tokens > 0  # from the engine's usage
    # transformers serve 5.23 streams the rendered prompt as its first delta for this checkpoint; the greedy
    # continuation after it is the one the Playground computes locally from the same weights.
    assert local_text.strip() and remote_text.endswith(local_text)
    assert service.remotes.report()[0].reachable == "yes"


def test_an_unknown_model_is_a_readable_refusal_from_the_engine(service):
    with pytest.raises(ModelUnavailableError, match="does not serve the model 'deepseek-ai/DeepSeek-V3'.*pinned"):
        run(service, "remote/wrong")


def test_stop_ends_an_engine_answer_early_and_the_engine_keeps_serving(service):
    stop = threading.Event()
    long = SamplingParams(max_new_tokens=1500, temperature=0.0)
    events = service.stream(ChatRequest("Tell me everything."), "remote/qwen2-tiny", "fp32", long, stop=stop)
    start = time.perf_counter()
    seen = []
    for event in events:
        seen.append(event)
        if len(seen) == 3:
            stop.set()
    event = seen[-1]
    assert isinstance(event, Finished) and event.stats.stopped and event.stats.new_tokens < 100
    assert time.perf_counter() - start < 10
    assert run(service, "remote/qwen2-tiny")[1].stats.new_tokens == 12


def test_eight_users_at_once_all_get_their_answer(service):
    results: list[str] = []
    threads = [threading.Thread(target=lambda i=i: results.append(run(service, "remote/qwen2-tiny", f"Q{i}?")[0]))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 8 and all(results)
    assert service.remotes.report()[0].in_flight == 0
