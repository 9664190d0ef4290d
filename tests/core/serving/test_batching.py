import threading
import time

import pytest
import torch

from core.errors import BusyError, OutOfMemoryError
from core.generation.sampling import SamplingParams
from core.generation.stream import PREFILL_CHUNK
from core.serving.batching import BatchedStream, Batcher, CountedStream
from tests.core.serving.batch_driver import (  # noqa: F401
    drive,
    generate_ids,
    inputs_for,
    make_row,
    one_thread,
    run_out_of_memory_once,
)

PROMPTS = ["Explain the assert statement.", "What is a list comprehension and when is it a good idea?", "Loops"]
GREEDY = SamplingParams(max_new_tokens=24, temperature=0, repetition_penalty=1.0)
TIMEOUT_S = 10  # seconds a stream waits for its next token: a stuck batcher fails the test instead of hanging it



def generate_alone(loaded, text: str, params: SamplingParams) -> str:
    inputs = inputs_for(loaded, text)
    with torch.inference_mode():
        out = loaded.model.generate(**inputs, **params.generate_kwargs(), pad_token_id=loaded.tokenizer.eos_token_id)
    return loaded.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def run_together(batcher: Batcher, texts: list[str], params: list[SamplingParams]) -> list[str]:
    """Each text from its own thread, all released at once; the streamed answers in order."""
    results: list[str] = [""] * len(texts)
    barrier = threading.Barrier(len(texts))

    def user(i: int) -> None:
        stream = batcher.stream(inputs_for(batcher.loaded, texts[i]), params[i], threading.Event(), TIMEOUT_S, None)
        barrier.wait()
        results[i] = "".join(stream)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a stream did not end"
    return results


@pytest.mark.parametrize("fixture", ["deepseek", "qwen"])
def test_each_batched_row_gives_the_tokens_of_a_single_greedy_generate(fixture, request):
    loaded = request.getfixturevalue(fixture)
    rows = [make_row(loaded, text, GREEDY) for text in PROMPTS]
    sizes = drive(Batcher(loaded), rows)
    assert sizes[0] == 3  # they really shared forward passes
    assert [row.streamer.ids for row in rows] == [generate_ids(loaded, text, GREEDY) for text in PROMPTS]


@pytest.mark.parametrize("fixture", ["deepseek", "qwen"])
def test_concurrent_streams_share_the_batch_and_get_their_single_request_text(fixture, request):
    loaded = request.getfixturevalue(fixture)
    batcher = Batcher(loaded, window_s=0.3, quiet_s=0.3)
    answers = run_together(batcher, PROMPTS, [GREEDY] * 3)
    assert batcher.peak_rows == 3
    assert answers == [generate_alone(loaded, text, GREEDY) for text in PROMPTS]
    assert all(a.strip() for a in answers) and batcher.active() == 0


def test_a_request_joining_a_running_batch_gets_its_single_request_tokens(deepseek):
    batcher = Batcher(deepseek, window_s=0)
    long_params = SamplingParams(max_new_tokens=40, temperature=0, repetition_penalty=1.0)
    first = iter(batcher.stream(inputs_for(deepseek, PROMPTS[0]), long_params, threading.Event(), TIMEOUT_S, None))
    head = next(first) + next(first)
    joined = "".join(batcher.stream(inputs_for(deepseek, PROMPTS[1]), GREEDY, threading.Event(), TIMEOUT_S, None))
    rest = "".join(first)
    assert batcher.peak_rows == 2
    assert joined == generate_alone(deepseek, PROMPTS[1], GREEDY)
    assert head + rest == generate_alone(deepseek, PROMPTS[0], long_params)


def test_rows_keep_their_own_sampling_settings_and_seeds(qwen):
    seeded = SamplingParams(max_new_tokens=20, temperature=1.0, top_p=0.9, top_k=40, repetition_penalty=1.2, seed=5)
    penalised = SamplingParams(max_new_tokens=20, temperature=0, repetition_penalty=1.5)
    settings = [seeded, GREEDY, penalised]
    batcher = Batcher(qwen, window_s=0.3, quiet_s=0.3)
    mixed = run_together(batcher, PROMPTS, settings)
    alone = [run_together(Batcher(qwen), [text], [p])[0] for text, p in zip(PROMPTS, settings, strict=True)]
    assert batcher.peak_rows == 3
    assert mixed == alone
    assert mixed[1] == generate_alone(qwen, PROMPTS[1], GREEDY)
    assert mixed[2] == generate_alone(qwen, PROMPTS[2], penalised)


def test_stop_frees_the_row_at_once_and_the_others_continue(deepseek):
    batcher = Batcher(deepseek, window_s=0.3, quiet_s=0.3)
    endless = SamplingParams(max_new_tokens=2000, temperature=1.0, seed=3)
    stop = threading.Event()
    stopped = iter(batcher.stream(inputs_for(deepseek, PROMPTS[0]), endless, stop, TIMEOUT_S, None))
    other_stream = batcher.stream(inputs_for(deepseek, PROMPTS[1]), GREEDY, threading.Event(), TIMEOUT_S, None)
    other: list[str] = []
    worker = threading.Thread(target=lambda: other.append("".join(other_stream)))
    worker.start()
    next(stopped)
    stop.set()
    start = time.perf_counter()
    list(stopped)
    assert time.perf_counter() - start < 1.0 and batcher.active() <= 1
    worker.join(60)
    assert not worker.is_alive()
    assert other == [generate_alone(deepseek, PROMPTS[1], GREEDY)]


def test_a_disconnected_client_leaves_the_batch(deepseek):
    batcher = Batcher(deepseek, window_s=0)
    endless = SamplingParams(max_new_tokens=2000, temperature=1.0, seed=1)  # seed 1: a 207-token answer
    iterator = iter(batcher.stream(inputs_for(deepseek, PROMPTS[0]), endless, threading.Event(), TIMEOUT_S, None))
    next(iterator)
    assert batcher.active() == 1
    iterator.close()  # GeneratorExit, as when gradio drops a closed connection
    assert batcher.active() == 0


def test_out_of_memory_mid_batch_is_readable_and_the_model_keeps_serving(deepseek, monkeypatch):
    batcher = Batcher(deepseek, window_s=0)
    run_out_of_memory_once(monkeypatch, deepseek)
    with pytest.raises(OutOfMemoryError, match="ran out of memory"):
        "".join(batcher.stream(inputs_for(deepseek, PROMPTS[0]), GREEDY, threading.Event(), TIMEOUT_S, None))
    assert batcher.active() == 0
    again = "".join(batcher.stream(inputs_for(deepseek, PROMPTS[0]), GREEDY, threading.Event(), TIMEOUT_S, None))
    assert again == generate_alone(deepseek, PROMPTS[0], GREEDY)


def test_a_lone_request_at_an_idle_model_skips_the_gather_window(deepseek):
    batcher = Batcher(deepseek, window_s=5.0)  # a burst would wait 5 s for companions; one request must not
    start = time.perf_counter()
    stream = iter(batcher.stream(inputs_for(deepseek, PROMPTS[0]), GREEDY, threading.Event(), 60, None))
    assert next(stream) is not None and time.perf_counter() - start < 5.0
    assert "".join(stream) is not None and batcher.active() == 0


def test_a_burst_that_stopped_growing_is_prefilled_without_waiting_out_the_window(deepseek):
    batcher = Batcher(deepseek, window_s=5.0, quiet_s=0.1)  # the window alone would hold the burst for 5 s
    batcher._pending.extend(make_row(deepseek, text, GREEDY) for text in PROMPTS[:2])
    batcher._last_arrival = time.monotonic()
    start = time.monotonic()
    batcher._gather()
    assert 0.09 <= time.monotonic() - start < 2.0  # waited for quiet, not for the window
    batcher.max_rows, batcher.quiet_s = 2, 5.0  # a burst that fills every row goes at once, however fresh
    batcher._last_arrival = start = time.monotonic()
    batcher._gather()
    assert time.monotonic() - start < 1.0


def test_exactly_max_waiting_requests_may_wait_and_the_next_is_told_the_server_is_busy(deepseek):
    batcher = Batcher(deepseek, max_rows=1, max_waiting=2, window_s=0)
    endless = SamplingParams(max_new_tokens=2000, temperature=1.0, seed=1)  # holds the only row for 207 tokens
    running = iter(batcher.stream(inputs_for(deepseek, PROMPTS[0]), endless, threading.Event(), TIMEOUT_S, None))
    next(running)
    waiting = [make_row(deepseek, text, GREEDY) for text in PROMPTS[:2]]
    for row in waiting:
        batcher.submit(row)  # the limit itself is allowed
    assert batcher.waiting() == 2
    with pytest.raises(BusyError, match=r"The server is busy: 2 requests are already waiting for "
                                        r"bundled/deepseek-v3-tiny\. Please try again in a moment\."):
        batcher.submit(make_row(deepseek, PROMPTS[2], GREEDY))
    assert batcher.waiting() == 2  # the refused request was not queued
    for row in waiting:
        batcher.withdraw(row)
    running.close()
    assert batcher.active() == 0


@pytest.mark.parametrize("fixture", ["deepseek", "qwen"])
def test_only_one_plain_text_prompt_that_fits_one_prefill_chunk_joins_the_batch(fixture, request):
    loaded = request.getfixturevalue(fixture)
    batcher = Batcher(loaded)

    def route(ids: torch.Tensor, **extra: torch.Tensor) -> type:
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), **extra}
        return type(batcher.stream(inputs, GREEDY, threading.Event(), TIMEOUT_S, None))  # nothing runs yet

    def tokens(n: int, rows: int = 1) -> torch.Tensor:
        return torch.full((rows, n), 5, dtype=torch.long)

    assert route(tokens(8)) is BatchedStream
    assert route(tokens(PREFILL_CHUNK)) is BatchedStream  # exactly one chunk still joins
    assert route(tokens(PREFILL_CHUNK + 1)) is CountedStream  # longer prompts prefill in chunks, alone
    assert route(tokens(8, rows=2)) is CountedStream  # a request of several rows is not one batch row
    assert route(tokens(8), pixel_values=torch.zeros(1, 3, 4, 4)) is CountedStream  # vision inputs go alone
    assert batcher.active() == 0
