import re
import threading

import pytest

from core.config import LimitsConfig
from core.errors import OutOfMemoryError
from core.generation.prompting import ChatRequest
from core.generation.sampling import SamplingParams
from core.models.budget import bytes_per_param, count_parameters, estimate_bytes, refusal_message
from core.models.catalog import default_catalog
from core.models.hardware import Precision
from core.models.memory import format_bytes
from core.quant.backends import load_model
from core.serving.registry import ModelRegistry
from core.serving.service import Service
from tests.conftest import DENSE_MODEL, TEXT_MODEL, VISION_MODEL
from tests.core.serving.test_registry import CountingLoader

MB = 1024 * 1024


@pytest.mark.parametrize("model_id", [TEXT_MODEL, DENSE_MODEL])
@pytest.mark.parametrize("precision", [Precision.FP32, Precision.BF16])
def test_estimate_before_loading_is_close_to_the_measured_memory(registry, model_id, precision):
    estimate = estimate_bytes(registry.catalog.get(model_id), precision)
    measured = registry.get(model_id, precision).memory_bytes
    assert measured <= estimate <= measured * 1.25


def test_unknown_precisions_are_budgeted_as_full_precision():
    assert bytes_per_param("some-future-int3") == bytes_per_param(Precision.FP32) == 4.0
    assert bytes_per_param(Precision.BF16) == 2.0
    assert bytes_per_param("int4") == 4.0  # quantized after a full-precision load: the load peaks at fp32
    assert bytes_per_param("bf16") == 2.0  # the API's plain strings count like the enum


@pytest.mark.parametrize("fixture", ["deepseek", "qwen", "vision"])
def test_the_count_before_loading_is_every_parameter_and_buffer_of_the_loaded_model(registry, fixture, request):
    loaded = registry.get(VISION_MODEL, "fp32") if fixture == "vision" else request.getfixturevalue(fixture)
    model = loaded.model
    expected = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
    assert any(True for _ in model.buffers())  # rotary tables: the count must include them
    assert count_parameters(loaded.entry) == expected
    assert estimate_bytes(loaded.entry, Precision.FP32) == int(expected * 4 * 1.1)


def test_the_refusal_names_the_need_the_shortfall_and_each_resident_model(deepseek):
    resident = [(deepseek, 2)]
    message = refusal_message("bundled/x", need=3 * MB, free=-MB, budget=8 * MB, resident=resident)
    assert message == (
        f"Not enough memory to load bundled/x: it needs about 3.0 MB, 0 B is free in the 8.0 MB memory budget "
        f"(3.0 MB missing). Resident now: {TEXT_MODEL} fp32 ({format_bytes(deepseek.memory_bytes)}, 2 running). "
        "Models answering requests are never unloaded; try again when they finish, unload one in the Resources tab, "
        "or pick a smaller precision.")
    no_budget = refusal_message("bundled/x", need=3 * MB, free=MB, budget=None, resident=resident + resident)
    assert "1.0 MB is free in free memory (2.0 MB missing)" in no_budget
    assert f"2 running); {TEXT_MODEL} fp32" in no_budget


def test_the_least_recently_used_idle_model_is_evicted_to_make_room(hardware):
    registry = ModelRegistry(default_catalog(), hardware, memory_budget_bytes=15 * MB)
    deepseek = registry.get(TEXT_MODEL, "fp32")
    registry.get(DENSE_MODEL, "fp32")
    registry.get(TEXT_MODEL, "fp32")  # deepseek is now the most recently used
    registry.get(TEXT_MODEL, "bf16")  # does not fit beside both: qwen goes
    assert {(m.key.model_id, m.key.precision) for m in registry.resident()} == {
        (TEXT_MODEL, Precision.BF16), (TEXT_MODEL, Precision.FP32)}
    assert registry.resident()[1] is deepseek and registry.free_bytes() > 0


def test_a_model_answering_a_request_is_never_evicted_and_the_refusal_says_why(hardware):
    registry = ModelRegistry(default_catalog(), hardware, memory_budget_bytes=10 * MB)
    params = SamplingParams(max_new_tokens=2000, temperature=1.0, seed=1)
    answer = iter(Service(registry, LimitsConfig()).open_stream(ChatRequest("Write about loops."), TEXT_MODEL, "fp32",
                                                                params, threading.Event()))
    next(answer)
    with pytest.raises(OutOfMemoryError) as refused:
        registry.get(DENSE_MODEL, "fp32")
    message = str(refused.value)
    assert DENSE_MODEL in message and TEXT_MODEL in message and "1 running" in message and "missing" in message
    answer.close()
    assert registry.get(DENSE_MODEL, "fp32").key.model_id == DENSE_MODEL  # idle now: evicted to make room
    assert [m.key.model_id for m in registry.resident()] == [DENSE_MODEL]


def test_a_model_larger_than_the_whole_budget_is_refused_cleanly(hardware):
    loader = CountingLoader()
    registry = ModelRegistry(default_catalog(), hardware, loader, memory_budget_bytes=5 * MB)
    with pytest.raises(OutOfMemoryError, match="Resident now: nothing"):
        registry.get(TEXT_MODEL, "fp32")
    assert loader.calls == 0 and registry.resident() == [] and registry.free_bytes() == 5 * MB
    assert registry.get(TEXT_MODEL, "bf16").key.precision == Precision.BF16  # a smaller precision fits


def test_a_storm_of_users_on_two_precisions_loads_each_precision_once(hardware):
    loader = CountingLoader()
    registry = ModelRegistry(default_catalog(), hardware, loader, memory_budget_bytes=64 * MB)
    barrier, got = threading.Barrier(16), []

    def user(i: int) -> None:
        barrier.wait(30)
        got.append(registry.get(TEXT_MODEL, ("fp32", "bf16")[i % 2]))

    threads = [threading.Thread(target=user, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert loader.calls == 2 and len({id(m) for m in got}) == 2 and len(registry.resident()) == 2


def need(model_id: str, precision: str) -> int:
    return estimate_bytes(default_catalog().get(model_id), Precision(precision))


def test_a_model_that_fits_to_the_byte_loads_beside_the_others(hardware, deepseek):
    budget = deepseek.memory_bytes + need(DENSE_MODEL, "fp32")  # room for qwen to the byte
    registry = ModelRegistry(default_catalog(), hardware, memory_budget_bytes=budget)
    registry.get(TEXT_MODEL, "fp32")
    registry.get(DENSE_MODEL, "fp32")
    assert {m.key.model_id for m in registry.resident()} == {TEXT_MODEL, DENSE_MODEL}


def test_room_freed_by_eviction_adds_to_the_room_already_free(hardware):
    bf16 = ModelRegistry(default_catalog(), hardware).get(TEXT_MODEL, "bf16").memory_bytes
    budget = bf16 + need(TEXT_MODEL, "fp32") - 1  # fp32 fits only with bf16's room added to what is free
    assert bf16 < need(TEXT_MODEL, "fp32") - 1
    registry = ModelRegistry(default_catalog(), hardware, memory_budget_bytes=budget)
    registry.get(TEXT_MODEL, "bf16")
    assert registry.get(TEXT_MODEL, "fp32").key.precision == Precision.FP32
    assert [m.key.precision for m in registry.resident()] == [Precision.FP32]


def test_a_load_in_flight_holds_its_estimate_and_the_refusal_names_the_budget(hardware):
    entered, release = threading.Event(), threading.Event()

    def slow_loader(entry, precision, hw):
        entered.set()
        assert release.wait(30), "the test never released the load"
        return load_model(entry, precision, hw)

    budget = need(TEXT_MODEL, "fp32") + need(DENSE_MODEL, "fp32") - 1  # qwen fits only if the reserved room were free
    registry = ModelRegistry(default_catalog(), hardware, slow_loader, memory_budget_bytes=budget)
    loading = threading.Thread(target=registry.get, args=(TEXT_MODEL, "fp32"))
    loading.start()
    try:
        assert entered.wait(30)
        assert registry.free_bytes() == budget - need(TEXT_MODEL, "fp32")
        with pytest.raises(OutOfMemoryError, match=re.escape(f"is free in the {format_bytes(budget)} memory budget")):
            registry.get(DENSE_MODEL, "fp32")  # the reserved room is not offered twice
    finally:
        release.set()
        loading.join(60)
    assert not loading.is_alive() and registry.free_bytes() == budget - registry.resident()[0].memory_bytes
