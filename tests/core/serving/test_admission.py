"""Fair sharing: bounded running and waiting slots, a per-client cap, heavy work apart from chat."""

from __future__ import annotations

import threading
import time

import pytest

from core.config import LimitsConfig, ServerConfig
from core.errors import BusyError, InputTooLongError, UnsupportedPrecisionError
from core.generation.prompting import ChatRequest
from core.generation.sampling import SamplingParams
from core.models.catalog import default_catalog
from core.serving.admission import Admission
from core.serving.registry import ModelRegistry
from core.serving.service import Service, TextDelta
from tests.conftest import DENSE_MODEL, TEXT_MODEL

GREEDY = SamplingParams(max_new_tokens=8, temperature=0, seed=0)


def test_beyond_running_plus_waiting_a_request_is_refused_at_once():
    gate = Admission("compare", max_running=1, max_waiting=1, per_client=5)
    release, entered = threading.Event(), []

    def hold(client: str) -> None:
        with gate.slot(client):
            entered.append(client)
            release.wait(10)

    first = threading.Thread(target=hold, args=("a",))
    first.start()
    while gate.running < 1:
        time.sleep(0.01)
    second = threading.Thread(target=hold, args=("b",))  # waits for the running slot
    second.start()
    while gate.waiting < 1:
        time.sleep(0.01)
    started = time.perf_counter()
    with pytest.raises(BusyError, match="busy"), gate.slot("c"):
        pass
    assert time.perf_counter() - started < 0.5  # refused at once, not after a wait
    release.set()
    first.join(5), second.join(5)
    assert entered == ["a", "b"] and gate.running == gate.waiting == 0


def test_one_client_cannot_take_more_than_its_share():
    gate = Admission("chat/caption", max_running=10, max_waiting=0, per_client=2)
    with gate.slot("greedy"), gate.slot("greedy"):
        with pytest.raises(BusyError, match="already have 2"), gate.slot("greedy"):
            pass
        with gate.slot("polite"):  # others still get in
            assert gate.running == 3


def test_a_running_comparison_never_starves_chat(registry):
    service = Service(registry, LimitsConfig(), server=ServerConfig(heavy_waiting=0))
    with service.heavy.slot("someone"):  # a comparison is running
        with pytest.raises(BusyError, match="busy"):
            service.compare(TEXT_MODEL, ["fp32"], "Hello", GREEDY, client="other")
        events = list(service.stream(ChatRequest("Hello"), TEXT_MODEL, "fp32", GREEDY, client="other"))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).strip()


def test_answers_beyond_max_in_flight_get_the_busy_message(registry):
    service = Service(registry, LimitsConfig(), server=ServerConfig(max_in_flight=1))
    first = service.stream(ChatRequest("Hello"), TEXT_MODEL, "fp32", GREEDY, client="a")
    next(first)  # streaming: holds the only slot
    with pytest.raises(BusyError, match="busy"):
        next(service.stream(ChatRequest("Hi"), TEXT_MODEL, "fp32", GREEDY, client="b"))
    first.close()  # a finished (or disconnected) answer frees its slot
    assert list(service.stream(ChatRequest("Hi"), TEXT_MODEL, "fp32", GREEDY, client="b"))


def test_compare_keeps_to_the_size_limits(registry):
    service = Service(registry, LimitsConfig(max_prompt_chars=1000, max_compare_prompt_tokens=64))
    with pytest.raises(InputTooLongError, match="characters"):
        service.compare(DENSE_MODEL, ["fp32"], "word " * 1000, GREEDY)
    with pytest.raises(InputTooLongError, match="64"):
        service.compare(DENSE_MODEL, ["fp32"], "word " * 150, GREEDY)
    assert service.heavy.running == service.heavy.waiting == 0


def test_calibration_switched_off_refuses_gptq_that_would_calibrate(hardware, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_CACHE", str(tmp_path))  # nothing calibrated yet
    service = Service(ModelRegistry(default_catalog(), hardware), LimitsConfig(), allow_calibration=False)
    with pytest.raises(UnsupportedPrecisionError, match="calibration is switched off"):
        service.compare(TEXT_MODEL, ["fp32", "gptq-int4"], "Hello", GREEDY)
    with pytest.raises(UnsupportedPrecisionError, match="calibration is switched off"):
        service.validate(ChatRequest("Hello"), TEXT_MODEL, "gptq-int8", GREEDY)
