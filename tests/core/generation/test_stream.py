import threading
import time

import pytest
import torch

from core.generation.prompting import ChatRequest
from core.generation.sampling import SamplingParams
from core.generation.stream import prefill_in_chunks, stream_chat

GREEDY = SamplingParams(max_new_tokens=40, temperature=0)


def test_streaming_yields_the_same_text_as_greedy_generate(deepseek):
    stream = stream_chat(deepseek, ChatRequest("Explain the assert statement."), GREEDY, threading.Event())
    streamed = "".join(stream)
    ids = torch.tensor([stream.plan.input_ids])
    out = deepseek.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=40, do_sample=False)
    expected = deepseek.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert streamed == expected and streamed.strip()
    assert stream.stats.new_tokens == out.shape[1] - ids.shape[1]
    assert stream.stats.prompt_tokens == ids.shape[1] and not stream.stats.stopped


def test_same_seed_same_sample(qwen):
    params = SamplingParams(max_new_tokens=20, temperature=1.0, seed=7)
    first = "".join(stream_chat(qwen, ChatRequest("Tell me about lists."), params, threading.Event()))
    second = "".join(stream_chat(qwen, ChatRequest("Tell me about lists."), params, threading.Event()))
    assert first == second


def test_stop_halts_generation_thread(deepseek):
    stop = threading.Event()
    params = SamplingParams(max_new_tokens=2000, temperature=1.0, seed=1)
    stream = stream_chat(deepseek, ChatRequest("Write a long essay about classes."), params, stop)
    before = set(threading.enumerate())
    chunks = 0
    for _ in stream:
        chunks += 1
        if chunks == 3:
            stop.set()
            stopped_at = time.perf_counter()
    assert time.perf_counter() - stopped_at < 1.0
    assert stream.stats.stopped and stream.stats.new_tokens < 100
    assert set(threading.enumerate()) <= before  # the generate thread is gone


def test_closing_the_stream_stops_the_model(deepseek):
    params = SamplingParams(max_new_tokens=2000, temperature=1.0, seed=2)
    iterator = iter(stream_chat(deepseek, ChatRequest("Write about loops."), params, threading.Event()))
    next(iterator)
    threads_before = threading.active_count()
    start = time.perf_counter()
    iterator.close()  # a disconnected client: GeneratorExit in the consumer
    assert time.perf_counter() - start < 1.0
    assert threading.active_count() < threads_before


def test_stats_measure_the_answer(deepseek):
    stream = stream_chat(deepseek, ChatRequest("What is a tuple?"), GREEDY, threading.Event())
    list(stream)
    stats = stream.stats
    assert 0 < stats.ttft_s <= stats.total_s
    assert stats.tokens_per_s > 0 and "tok/s" in stats.summary() and "cpu fp32" in stats.summary()


def test_chunked_prefill_gives_the_same_tokens_as_one_pass(deepseek):
    ids = torch.randint(10, 2000, (1, 700), generator=torch.Generator().manual_seed(0))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.inference_mode():
        cache = prefill_in_chunks(deepseek.model, inputs, (threading.Event(),), chunk=256)
        assert cache.get_seq_length() == 699
        chunked = deepseek.model.generate(**inputs, past_key_values=cache, max_new_tokens=12, do_sample=False)
        whole = deepseek.model.generate(**inputs, max_new_tokens=12, do_sample=False)
    assert torch.equal(chunked, whole)


def test_stop_during_a_long_prefill_skips_the_answer(deepseek):
    stop = threading.Event()
    stop.set()
    request = ChatRequest("Summarise.", document="word " * 3000)
    stream = stream_chat(deepseek, request, GREEDY, stop)
    assert "".join(stream) == "" and stream.stats.new_tokens == 0 and stream.stats.stopped


def test_context_cap_from_config_bounds_the_window(deepseek):
    stream = stream_chat(deepseek, ChatRequest("Summarise.", document="word " * 3000), GREEDY,
                         threading.Event(), max_context_tokens=512)
    assert stream.plan.window == 512 and stream.plan.prompt_tokens <= 512 - 40 and stream.plan.trimmed


@pytest.mark.parametrize("answer", ["Thequickanswer, then more words here", " Thequickanswer, then more words"])
def test_the_first_tokens_text_is_handed_over_before_its_word_ends(deepseek, answer):
    from core.generation.stream import MeteredStreamer

    tokenizer = deepseek.tokenizer
    words = tokenizer(answer, add_special_tokens=False).input_ids
    assert " " not in tokenizer.decode(words[:2]).strip()  # the first token is part of a longer word
    assert tokenizer.decode(words[:1]).strip()  # ... with more in it than a space
    streamer = MeteredStreamer(tokenizer, timeout=1.0, handoff_s=0.0)
    streamer.put(torch.tensor([[1, 2, 3]]))  # the prompt: skipped
    streamer.put(torch.tensor([words[0]]))
    early = []  # transformers alone would hand over at most the leading space before the next word begins
    while not streamer.text_queue.empty():
        early.append(streamer.text_queue.get(timeout=1))
    assert "".join(early) == tokenizer.decode(words[:1])
    for token in words[1:]:
        streamer.put(torch.tensor([token]))
    streamer.end()
    chunks = [*early, *iter(streamer.text_queue.get, streamer.stop_signal)]
    assert "".join(chunks) == tokenizer.decode(words)  # nothing repeated or lost after the early hand-over
