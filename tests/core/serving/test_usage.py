import threading

import pytest

from core.config import LimitsConfig
from core.errors import BusyError, PlaygroundError
from core.generation.prompting import ChatRequest
from core.generation.sampling import SamplingParams
from core.models.catalog import default_catalog
from core.serving.batching import Batcher
from core.serving.registry import ModelRegistry
from core.serving.service import Service
from core.serving.usage import report_resources, unload_idle
from tests.conftest import TEXT_MODEL
from tests.core.serving.batch_driver import inputs_for, wait_until
from tests.core.serving.test_batching import PROMPTS, TIMEOUT_S

ENDLESS = SamplingParams(max_new_tokens=2000, temperature=1.0, seed=9)


def test_report_shows_resident_models_their_memory_and_running_requests(hardware):
    registry = ModelRegistry(default_catalog(), hardware, memory_budget_bytes=64 * 1024 * 1024)
    loaded = registry.get(TEXT_MODEL, "fp32")
    answer = iter(Service(registry, LimitsConfig()).open_stream(ChatRequest("Write about loops."), TEXT_MODEL, "fp32",
                                                                ENDLESS, threading.Event()))
    next(answer)
    report = report_resources(registry)
    (row,) = report.models
    assert (row.model_id, row.precision, row.device, row.running) == (TEXT_MODEL, "fp32", "cpu", 1)
    assert row.memory_bytes == loaded.memory_bytes and report.running == 1
    assert report.free_bytes == 64 * 1024 * 1024 - loaded.memory_bytes
    with pytest.raises(PlaygroundError, match="answering 1 request"):
        unload_idle(registry, TEXT_MODEL, "fp32")
    answer.close()
    assert report_resources(registry).running == 0
    assert unload_idle(registry, TEXT_MODEL, "fp32") and report_resources(registry).models == ()


def test_requests_beyond_the_waiting_limit_are_told_the_server_is_busy(deepseek):
    batcher = Batcher(deepseek, max_rows=1, window_s=0, max_waiting=1)
    first = iter(batcher.stream(inputs_for(deepseek, PROMPTS[0]), ENDLESS, threading.Event(), TIMEOUT_S, None))
    next(first)  # holds the only row
    second = iter(batcher.stream(inputs_for(deepseek, PROMPTS[1]), ENDLESS, threading.Event(), TIMEOUT_S, None))
    waiter = threading.Thread(target=lambda: next(second, None))
    waiter.start()
    wait_until(lambda: batcher.waiting() == 1)
    with pytest.raises(BusyError, match="busy: 1 requests are already waiting"):
        next(iter(batcher.stream(inputs_for(deepseek, PROMPTS[2]), ENDLESS, threading.Event(), TIMEOUT_S, None)))
    first.close()  # frees the row: the waiting request gets it
    waiter.join(30)
    assert not waiter.is_alive()
    second.close()
    assert batcher.active() == 0


def test_a_client_that_leaves_while_waiting_for_a_row_is_dropped_at_once(deepseek):
    batcher = Batcher(deepseek, max_rows=1, window_s=0)
    first = iter(batcher.stream(inputs_for(deepseek, PROMPTS[0]), ENDLESS, threading.Event(), TIMEOUT_S, None))
    next(first)
    stop = threading.Event()
    queued = batcher.stream(inputs_for(deepseek, PROMPTS[1]), ENDLESS, stop, TIMEOUT_S, None)
    waiter = threading.Thread(target=lambda: list(queued))
    waiter.start()
    wait_until(lambda: batcher.waiting() == 1)
    stop.set()
    waiter.join(5)  # a Stop while queued must not wait for the long answer holding the row
    assert batcher.active() == 1 and not waiter.is_alive()
    first.close()
