"""The batcher's bookkeeping around the forward passes: which rows it takes and when, the solo path's count, the
streams' stats and timeouts, and waiting for its thread. Each test is bounded: a bug fails it, never hangs it."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from core.errors import GenerationError
from core.generation.prompting import ContextPlan
from core.generation.stream import PREFILL_CHUNK, GenerationStats
from core.serving.batch_state import prefill
from core.serving.batching import PAD_ID, BatchedStream, Batcher, CountedStream
from tests.core.serving.batch_driver import generate_ids, greedy, inputs_for, make_row, one_thread, wait_until  # noqa: F401

PROMPTS = ["Explain the assert statement.", "Loops", "The with statement"]
NOTHING_FOR = r"The model produced nothing for \d+ s and was stopped\."


def assert_carries(stream, batcher: Batcher, inputs, params, stop, timeout_s, plan) -> None:
    """The stream holds exactly the request it was given (callers read .plan; the timeout bounds every wait)."""
    assert stream.batcher is batcher and stream.loaded is batcher.loaded
    assert stream.inputs is inputs and stream.params is params and stream.stop is stop
    assert stream.timeout_s == timeout_s and stream.plan is plan


@pytest.mark.parametrize("length", [8, PREFILL_CHUNK + 1])
def test_a_stream_carries_its_request_on_either_path(deepseek, length):
    batcher, stop, params = Batcher(deepseek), threading.Event(), greedy(4)
    inputs = {"input_ids": torch.full((1, length), 5), "attention_mask": torch.ones(1, length, dtype=torch.long)}
    plan = ContextPlan(list(range(length)), window=32768, reserved_tokens=4)
    stream = batcher.stream(inputs, params, stop, 7, plan)
    assert type(stream) is (BatchedStream if length <= PREFILL_CHUNK else CountedStream)
    assert_carries(stream, batcher, inputs, params, stop, 7, plan)


def test_a_long_prompt_is_served_alone_and_counted_as_active_until_it_ends(deepseek):
    batcher, params = Batcher(deepseek), greedy(6)
    text = "Explain loops. " * 700
    inputs = inputs_for(deepseek, text)
    assert inputs["input_ids"].shape[1] > PREFILL_CHUNK
    stream = batcher.stream(inputs, params, threading.Event(), 30, None)
    assert isinstance(stream, CountedStream) and batcher.active() == 0  # counted while it runs, not before
    chunks = iter(stream)
    first = next(chunks)
    assert batcher.active() == 1 and batcher.waiting() == 0  # the registry must not evict its model now
    rest = "".join(chunks)
    assert batcher.active() == 0
    expected = generate_ids(deepseek, text, params)
    assert first + rest == deepseek.tokenizer.decode(expected, skip_special_tokens=True)
    assert stream.stats.new_tokens == len(expected) and stream.stats.prompt_tokens == inputs["input_ids"].shape[1]


@pytest.mark.parametrize("fixture", ["deepseek", "qwen"])
def test_a_batched_stream_reports_the_stats_of_its_own_row(fixture, request):
    loaded = request.getfixturevalue(fixture)
    batcher, params = Batcher(loaded), greedy(12)
    inputs = inputs_for(loaded, PROMPTS[0])
    stream = batcher.stream(inputs, params, threading.Event(), 30, None)
    assert batcher.peak_rows == 0  # no forward pass yet
    start = time.perf_counter()
    text = "".join(stream)
    elapsed = time.perf_counter() - start
    assert batcher.peak_rows == 1
    expected = generate_ids(loaded, PROMPTS[0], params)
    assert text == loaded.tokenizer.decode(expected, skip_special_tokens=True)
    stats = stream.stats
    assert isinstance(stats, GenerationStats) and stats.stopped is False
    assert (stats.prompt_tokens, stats.new_tokens) == (inputs["input_ids"].shape[1], len(expected))
    assert (stats.device, stats.precision) == (loaded.device, loaded.key.precision.value)
    assert 0 < stats.ttft_s < stats.total_s <= elapsed


def test_a_request_stopped_before_it_got_a_row_ends_empty_with_stopped_stats(deepseek):
    batcher, stop = Batcher(deepseek), threading.Event()
    stop.set()
    stream = batcher.stream(inputs_for(deepseek, PROMPTS[0]), greedy(12), stop, 30, None)
    assert "".join(stream) == "" and batcher.active() == 0
    stats = stream.stats
    assert stats.stopped is True and stats.new_tokens == 0 and 0 <= stats.ttft_s <= stats.total_s < 30


def test_a_running_batch_takes_waiting_rows_at_once_and_only_into_free_rows(deepseek):
    batcher = Batcher(deepseek, max_rows=2, window_s=5.0, quiet_s=5.0)  # a gather would hold them 5 s
    running = make_row(deepseek, PROMPTS[0], greedy(4))
    with torch.inference_mode():
        state, _ = prefill(deepseek.model, [running.prompt], [running], PAD_ID, deepseek.device)
    waiting = [make_row(deepseek, text, greedy(4)) for text in PROMPTS]
    batcher._pending.extend(waiting)
    batcher._last_arrival = time.monotonic()
    start = time.monotonic()
    assert batcher._take(state) == waiting[:1]  # one row free
    assert time.monotonic() - start < 1.0  # joining a running batch never waits for a burst
    assert batcher._pending == waiting[1:] and batcher._running == waiting[:1]


def test_an_idle_model_gathers_a_burst_but_takes_a_lone_request_at_once(deepseek):
    lone = Batcher(deepseek, window_s=5.0, quiet_s=5.0)
    row = make_row(deepseek, PROMPTS[0], greedy(4))
    lone._pending.append(row)
    lone._last_arrival = start = time.monotonic()
    assert lone._take(None) == [row] and time.monotonic() - start < 1.0
    burst = Batcher(deepseek, window_s=0.6, quiet_s=0.3)
    rows = [make_row(deepseek, text, greedy(4)) for text in PROMPTS[:2]]
    burst._pending.extend(rows)
    burst._last_arrival = start = time.monotonic()
    assert burst._take(None) == rows and 0.25 <= time.monotonic() - start < 5.0  # two waited for the quiet


def test_a_request_that_waits_past_its_timeout_fails_readably_and_leaves_the_queue_at_once(deepseek):
    batcher = Batcher(deepseek, window_s=2.0, quiet_s=2.0)  # the scheduler gathers the burst for 2 s
    other = make_row(deepseek, PROMPTS[1], greedy(4))
    batcher._pending.append(other)  # already waiting when the stream's row arrives: a burst of two
    stream = batcher.stream(inputs_for(deepseek, PROMPTS[0]), greedy(4), threading.Event(), 0.5, None)
    start = time.monotonic()
    with pytest.raises(GenerationError, match=NOTHING_FOR):
        "".join(stream)
    assert time.monotonic() - start < 1.6  # its timeout, not the gather
    assert batcher._pending == [other]  # its row was withdrawn, not left for the scheduler to find
    batcher.withdraw(other)
    batcher.settle(timeout_s=5.0)
    assert batcher.active() == 0 and batcher._thread is None


def test_a_consumer_gives_up_on_a_stuck_forward_pass_within_its_timeout(deepseek):
    """A forward pass that never returns (a hung device) must not hold the consumer past its timeout twice over."""
    batcher, gate = Batcher(deepseek, window_s=0), threading.Event()

    def stuck(*_) -> None:
        gate.wait(10)

    hook = deepseek.model.register_forward_pre_hook(stuck)
    release = threading.Timer(3.0, gate.set)  # bounds the test if the consumer waits for the model
    release.start()
    try:
        stream = batcher.stream(inputs_for(deepseek, PROMPTS[0]), greedy(4), threading.Event(), 0.5, None)
        start = time.monotonic()
        with pytest.raises(GenerationError, match=NOTHING_FOR):
            "".join(stream)
        assert time.monotonic() - start < 2.5
    finally:
        gate.set()
        release.cancel()
        hook.remove()
    wait_until(lambda: batcher.active() == 0)  # its row leaves once the forward pass returns


def test_settle_joins_an_idle_scheduler_thread_only_and_never_waits_past_its_timeout(deepseek):
    batcher, done, stuck = Batcher(deepseek), threading.Event(), threading.Event()
    batcher._thread = thread = threading.Thread(target=done.wait, args=(10,))  # stands in for the scheduler
    thread.start()
    row = make_row(deepseek, PROMPTS[0], greedy(4))
    for rows in (batcher._pending, batcher._running):  # a row waiting or running: the thread has work left
        rows.append(row)
        start = time.monotonic()
        batcher.settle(timeout_s=5.0)
        assert time.monotonic() - start < 1.0
        rows.remove(row)
    threading.Timer(0.2, done.set).start()
    batcher.settle(timeout_s=5.0)
    assert not thread.is_alive()  # idle: settle returned once the thread had exited
    batcher._thread = thread = threading.Thread(target=stuck.wait, args=(10,))
    thread.start()
    release = threading.Timer(3.0, stuck.set)  # bounds the test if settle waits without a limit
    release.start()
    start = time.monotonic()
    batcher.settle(timeout_s=0.2)
    assert time.monotonic() - start < 2.0 and thread.is_alive()
    stuck.set()
    release.cancel()


def test_a_row_that_arrives_during_a_prefill_is_prefilled_before_the_next_step(deepseek):
    """A burst's first tokens wait for one more prefill, not for a decode step of the rows already in."""
    batcher = Batcher(deepseek, window_s=0)
    first, late = (make_row(deepseek, text, greedy(3)) for text in PROMPTS[:2])
    passes: list[tuple[int, int]] = []  # (rows, tokens per row) of each forward pass

    def record(_module, _args, kwargs) -> None:
        ids = kwargs["input_ids"]
        passes.append((ids.shape[0], ids.shape[1]))
        if len(passes) == 1:
            batcher.submit(late)  # arrives while the first row's prefill runs

    hook = deepseek.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        batcher.submit(first)
        assert first.released.wait(10) and late.released.wait(10)
    finally:
        hook.remove()
    batcher.settle(timeout_s=5.0)
    assert passes[0][0] == 1 and passes[0][1] > 1 and passes[1][0] == 1 and passes[1][1] > 1  # two prefills
    assert passes[2] == (2, 1)  # then every decode step has both rows
    assert first.streamer.ids and len(late.streamer.ids) == 3
