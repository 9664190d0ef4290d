import threading
import time
from dataclasses import replace

import pytest

from core.errors import ModelUnavailableError, OutOfMemoryError, UnsupportedPrecisionError
from core.models.catalog import default_catalog
from core.models.loading import ModelKey
from core.quant.backends import load_model
from core.serving.registry import ModelRegistry
from tests.conftest import DENSE_MODEL, TEXT_MODEL


class CountingLoader:
    """The real loader, counted (and slowed) so concurrent first requests overlap."""

    def __init__(self, fail_first: bool = False) -> None:
        self.calls = 0
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def __call__(self, entry, precision, hardware):
        with self.lock:
            self.calls += 1
            call = self.calls
        time.sleep(0.3)
        if self.fail_first and call == 1:
            raise ModelUnavailableError("disk went away halfway")
        return load_model(entry, precision, hardware)


def test_registry_loads_once_when_threads_ask_at_the_same_time(hardware):
    loader = CountingLoader()
    registry = ModelRegistry(default_catalog(), hardware, loader)
    results, barrier = [], threading.Barrier(8)

    def ask():
        barrier.wait(30)
        results.append(registry.get(TEXT_MODEL, "fp32"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert loader.calls == 1
    assert len(results) == 8 and all(r is results[0] for r in results)
    assert registry.get(TEXT_MODEL, "fp32") is results[0]


def test_each_precision_is_its_own_resident_model(hardware):
    loader = CountingLoader()
    registry = ModelRegistry(default_catalog(), hardware, loader)
    fp32 = registry.get(TEXT_MODEL, "fp32")
    bf16 = registry.get(TEXT_MODEL, "bf16")
    assert fp32 is not bf16 and loader.calls == 2
    assert {m.key for m in registry.resident()} == {fp32.key, bf16.key}
    assert bf16.memory_bytes < fp32.memory_bytes * 0.6


def test_failed_load_leaves_registry_clean_and_next_request_retries(hardware):
    loader = CountingLoader(fail_first=True)
    registry = ModelRegistry(default_catalog(), hardware, loader)
    with pytest.raises(ModelUnavailableError):
        registry.get(TEXT_MODEL, "fp32")
    assert registry.resident() == []
    assert registry.get(TEXT_MODEL, "fp32").key == ModelKey(TEXT_MODEL, "fp32")
    assert loader.calls == 2


def test_a_failed_load_gives_back_the_memory_it_reserved(hardware):
    registry = ModelRegistry(default_catalog(), hardware, CountingLoader(fail_first=True), memory_budget_bytes=64 << 20)
    with pytest.raises(ModelUnavailableError):
        registry.get(TEXT_MODEL, "fp32")
    assert registry.free_bytes() == 64 << 20  # nothing resident, nothing still reserved
    loaded = registry.get(TEXT_MODEL, "fp32")
    assert registry.free_bytes() == (64 << 20) - loaded.memory_bytes


def test_unknown_precision_is_a_readable_error(registry):
    with pytest.raises(UnsupportedPrecisionError, match="Unknown precision 'int3'"):
        registry.get(TEXT_MODEL, "int3")


def test_unload_frees_the_slot(hardware):
    registry = ModelRegistry(default_catalog(), hardware)
    loaded = registry.get(TEXT_MODEL, "fp32")
    assert registry.unload(loaded.key)
    assert registry.resident() == [] and registry.running(loaded.key) == 0
    with pytest.raises(KeyError):  # its batcher went with it: nothing can queue on an unloaded model
        registry.batcher(loaded.key)
    assert not registry.unload(loaded.key)


def test_a_held_model_counts_as_running_and_is_not_evicted(hardware):
    registry = ModelRegistry(default_catalog(), hardware, memory_budget_bytes=10 << 20)
    reference = registry.get(TEXT_MODEL, "fp32")
    with registry.hold(reference.key):
        assert registry.running(reference.key) == 1
        with pytest.raises(OutOfMemoryError, match="1 running"):
            registry.get(DENSE_MODEL, "fp32")  # would need the held model's room
    assert registry.running(reference.key) == 0
    registry.get(DENSE_MODEL, "fp32")  # idle again: evicted to make room
    assert [m.key.model_id for m in registry.resident()] == [DENSE_MODEL]


def test_registering_an_id_again_replaces_its_entry_and_unloads_only_its_models(hardware):
    registry = ModelRegistry(default_catalog(), hardware)
    old = registry.get(TEXT_MODEL, "fp32")
    other = registry.get(DENSE_MODEL, "fp32")
    count = len(registry.catalog.entries)
    renamed = replace(registry.catalog.get(TEXT_MODEL), description="Fine-tuned on loops.")
    registry.register(renamed)
    assert registry.catalog.get(TEXT_MODEL) is renamed and len(registry.catalog.entries) == count
    assert [m.key for m in registry.resident()] == [other.key]  # the stale model went, the other stayed
    assert registry.get(TEXT_MODEL, "fp32") is not old  # the next request loads the new entry
    added = replace(renamed, model_id="bundled/loops-adapter")
    registry.register(added)
    assert registry.catalog.get("bundled/loops-adapter") is added and len(registry.catalog.entries) == count + 1
    assert len(registry.resident()) == 2
