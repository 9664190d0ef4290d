"""GpuChat on the real tiny DeepseekV3: in-process, through spaces.GPU with ZeroGPU off, and through a ZeroGPU
stand-in (ZeroGPU itself needs a Space) that receives the per-request duration."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from core.config import LimitsConfig
from core.generation import SamplingParams
from core.gpu_chat import GpuChat
from core.prompting import ChatRequest
from core.space.config import ZeroGpuSection
from tests.conftest import TEXT_MODEL

GREEDY = SamplingParams(max_new_tokens=12, temperature=0, seed=0)
REQUEST = ChatRequest("What is a list in Python?")


def answer_of(chat: GpuChat, params: SamplingParams = GREEDY, stop: threading.Event | None = None):
    updates = list(chat.stream(stop or threading.Event(), TEXT_MODEL, "fp32", REQUEST, params))
    return "".join(u.delta for u in updates), updates


def test_in_process_stream_sends_meter_then_text_then_stats(registry):
    text, updates = answer_of(GpuChat(registry, LimitsConfig()))
    assert updates[0].meter and "tokens" in updates[0].meter
    assert updates[-1].stats is not None and updates[-1].stats.new_tokens == 12 and updates[-1].backend
    assert text.strip()


def test_spaces_gpu_with_zerogpu_off_is_a_no_op_and_answers_the_same(registry, monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    spaces = pytest.importorskip("spaces")
    chat = GpuChat(registry, LimitsConfig(), ZeroGpuSection(enabled=True),
                   lambda task, duration: spaces.GPU(task, duration=duration))
    assert spaces.GPU(chat.duration_s, duration=60) == chat.duration_s  # undecorated off ZeroGPU
    assert answer_of(chat)[0] == answer_of(GpuChat(registry, LimitsConfig()))[0]


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
    _text, updates = answer_of(GpuChat(registry, LimitsConfig(), zero, stand_in),
                               SamplingParams(max_new_tokens=50, temperature=0))
    assert stand_in.durations == [12]
    assert "lowered from 50 to 5" in updates[0].note  # (12 s - 10 s - prefill) * 3 tokens/s
    assert updates[-1].stats is not None and updates[-1].stats.new_tokens <= 5


def test_stop_ends_a_zerogpu_task_that_cannot_see_the_event(registry):
    stand_in, stop = ZeroGpuStandIn(), threading.Event()
    chat = GpuChat(registry, LimitsConfig(), ZeroGpuSection(enabled=True), stand_in)
    updates = []
    for update in chat.stream(stop, TEXT_MODEL, "fp32", REQUEST, SamplingParams(max_new_tokens=200, temperature=0)):
        updates.append(update)
        if update.delta:
            stop.set()
    assert sum(bool(u.delta) for u in updates) == 1 and updates[-1].stats is None
    assert 1 <= stand_in.durations[0] <= ZeroGpuSection().max_duration_s
