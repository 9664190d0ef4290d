"""The Service on the real tiny DeepseekV3: in-process, through spaces.GPU with ZeroGPU off, and through a ZeroGPU
stand-in (ZeroGPU itself needs a Space) that receives the per-request duration."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from core.config import LimitsConfig
from core.generation.prompting import ChatRequest
from core.generation.sampling import SamplingParams
from core.serving.service import ContextMeter, Finished, Notice, Service, TextDelta
from core.serving.zerogpu import ZeroGpuSection
from tests.conftest import TEXT_MODEL

GREEDY = SamplingParams(max_new_tokens=12, temperature=0, seed=0)
REQUEST = ChatRequest("What is a list in Python?")


def text_of(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def answer_of(service: Service, params: SamplingParams = GREEDY, stop: threading.Event | None = None):
    events = list(service.stream(REQUEST, TEXT_MODEL, "fp32", params, stop=stop))
    return text_of(events), events


def test_in_process_stream_sends_meter_then_text_then_stats(registry):
    text, events = answer_of(Service(registry, LimitsConfig()))
    assert isinstance(events[0], ContextMeter) and "tokens" in events[0].summary
    assert isinstance(events[-1], Finished) and events[-1].stats.new_tokens == 12 and events[-1].backend
    assert text.strip()


def test_spaces_gpu_with_zerogpu_off_is_a_no_op_and_answers_the_same(registry, monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    spaces = pytest.importorskip("spaces")
    service = Service(registry, LimitsConfig(), ZeroGpuSection(enabled=True),
                      lambda task, duration: spaces.GPU(task, duration=duration))
    duration_s = service.runner.duration_s
    assert spaces.GPU(duration_s, duration=60) == duration_s  # undecorated off ZeroGPU
    assert answer_of(service)[0] == answer_of(Service(registry, LimitsConfig()))[0]


class ZeroGpuStandIn:
    """Calls the duration function with the task's arguments, as spaces.GPU does on ZeroGPU, and records it; the
    task then runs as in ZeroGPU's forked worker, where the parent's Stop events are out of reach."""

    def __init__(self) -> None:
        self.durations: list[int] = []

    def __call__(self, task: Any, duration: Any) -> Any:
        def run(stop_id: str, *args: Any) -> Any:
            self.durations.append(duration(stop_id, *args))
            yield from task("id-unknown-in-the-worker", *args)

        return run


def test_zerogpu_request_too_long_for_the_slot_is_cut_and_says_so(registry):
    zero = ZeroGpuSection(enabled=True, max_duration_s=12, overhead_s=10, load_s=0, decode_tokens_per_s={"fp32": 3})
    stand_in = ZeroGpuStandIn()
    _text, events = answer_of(Service(registry, LimitsConfig(), zero, stand_in),
                              SamplingParams(max_new_tokens=50, temperature=0))
    assert stand_in.durations == [12]
    assert isinstance(events[0], Notice) and "lowered from 50 to 5" in events[0].text  # (12-10-prefill) s * 3 tok/s
    assert isinstance(events[-1], Finished) and events[-1].stats.new_tokens <= 5


def test_stop_ends_a_zerogpu_task_that_cannot_see_the_event(registry):
    stand_in, stop = ZeroGpuStandIn(), threading.Event()
    service = Service(registry, LimitsConfig(), ZeroGpuSection(enabled=True), stand_in)
    events = []
    for event in service.stream(REQUEST, TEXT_MODEL, "fp32", SamplingParams(max_new_tokens=200, temperature=0),
                                stop=stop):
        events.append(event)
        if isinstance(event, TextDelta):
            stop.set()
    assert sum(isinstance(e, TextDelta) for e in events) == 1 and not isinstance(events[-1], Finished)
    assert 1 <= stand_in.durations[0] <= ZeroGpuSection().max_duration_s
