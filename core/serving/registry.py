"""ModelRegistry: exactly one resident model per (model, precision), shared by every user."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import torch

from core.errors import OutOfMemoryError
from core.models.budget import estimate_bytes, refusal_message
from core.models.catalog import Catalog, CatalogEntry
from core.models.hardware import Hardware, Precision, parse_precision
from core.models.loading import LoadedModel, ModelKey
from core.quant.backends import load_model
from core.serving.batching import MAX_WAITING, Batcher

Loader = Callable[..., LoadedModel]  # (entry, precision, hardware) -> LoadedModel


class ModelRegistry:
    """Loads each ModelKey once, however many threads ask at the same time."""

    def __init__(self, catalog: Catalog, hardware: Hardware, loader: Loader = load_model,
                 memory_budget_bytes: int | None = None, max_waiting: int = MAX_WAITING) -> None:
        self.catalog = catalog
        self.hardware = hardware
        self._loader = loader
        self.memory_budget_bytes = memory_budget_bytes  # None: whatever the device has free
        self.max_waiting = max_waiting  # per model, requests waiting for a batch row before "busy"
        self._admission = threading.Lock()  # one admission decision at a time
        self._reserved: dict[ModelKey, int] = {}  # estimated bytes of loads in flight
        self._lock = threading.Lock()
        self._resident: dict[ModelKey, LoadedModel] = {}
        self._batchers: dict[ModelKey, Batcher] = {}  # one per resident model: its requests share forward passes
        self._holds: dict[ModelKey, int] = {}  # work outside the batcher using a model (e.g. a comparison)
        self._loading: dict[ModelKey, Future[LoadedModel]] = {}

    def get(self, model_id: str, precision: Precision | str) -> LoadedModel:
        """The resident model for (model_id, precision), loading it once if needed."""
        entry = self.catalog.get(model_id)
        key = ModelKey(entry.model_id, parse_precision(precision))
        with self._lock:
            if key in self._resident:
                loaded = self._resident[key]
                loaded.last_used = time.monotonic()
                return loaded
            future = self._loading.get(key)
            owner = future is None
            if owner:
                future = self._loading[key] = Future()
        assert future is not None
        if owner:
            self._load_into(key, future)
        return future.result()

    def _load_into(self, key: ModelKey, future: Future[LoadedModel]) -> None:
        try:
            self._admit(key)
            loaded = self._loader(self.catalog.get(key.model_id), key.precision, self.hardware)
            batcher = Batcher(loaded, max_waiting=self.max_waiting)
        except BaseException as exc:  # waiters get the same error; the next request retries
            with self._lock:
                del self._loading[key]
                self._reserved.pop(key, None)
            future.set_exception(exc)
            return
        with self._lock:
            self._resident[key] = loaded
            self._batchers[key] = batcher
            del self._loading[key]
            self._reserved.pop(key, None)
        future.set_result(loaded)

    def register(self, entry: CatalogEntry) -> None:
        """Add a runtime catalog entry (e.g. a fine-tuned adapter); one with the same id is replaced and unloaded."""
        with self._lock:
            kept = tuple(e for e in self.catalog.entries if e.model_id != entry.model_id)
            self.catalog = Catalog((*kept, entry))
            stale = [key for key in self._resident if key.model_id == entry.model_id]
        for key in stale:
            self.unload(key)

    def batcher(self, key: ModelKey) -> Batcher:
        """The batcher serving a resident model's requests (KeyError if key is not resident)."""
        with self._lock:
            return self._batchers[key]

    def running(self, key: ModelKey) -> int:
        """Requests being served, waiting or holding a resident model now (0 if it is not resident)."""
        with self._lock:
            batcher, holds = self._batchers.get(key), self._holds.get(key, 0)
        return (batcher.active() if batcher else 0) + holds

    @contextlib.contextmanager
    def hold(self, key: ModelKey) -> Iterator[None]:
        """Count work that uses a model outside its batcher as running, so it is never evicted meanwhile."""
        with self._lock:
            self._holds[key] = self._holds.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._holds[key] -= 1
                if not self._holds[key]:
                    del self._holds[key]

    def resident(self) -> list[LoadedModel]:
        """Models in memory now, most recently used first."""
        with self._lock:
            return sorted(self._resident.values(), key=lambda m: m.last_used, reverse=True)

    def unload(self, key: ModelKey) -> bool:
        """Drop a resident model and return its memory; False if it was not resident."""
        with self._lock:
            loaded = self._resident.pop(key, None)
            self._batchers.pop(key, None)
        if loaded is None:
            return False
        del loaded
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return True

    def _admit(self, key: ModelKey) -> None:
        """Reserve key's estimated footprint, evicting idle models (least recently used first) or refusing."""
        need = estimate_bytes(self.catalog.get(key.model_id), key.precision)
        if need is None:  # nothing to estimate from; the load reports its own errors
            return
        with self._admission:
            free = self.free_bytes()
            idle = [(m.key, m.memory_bytes) for m in reversed(self.resident())
                    if not self.running(m.key)]  # least recently used first
            while free < need and idle:
                victim, size = idle.pop(0)
                if self.unload(victim):
                    free += size
            if free < need:
                held = [(m, self.running(m.key)) for m in self.resident()]
                raise OutOfMemoryError(refusal_message(f"{key.model_id} ({key.precision.value})", need, free,
                                                       self.memory_budget_bytes, held))
            with self._lock:
                self._reserved[key] = need

    def free_bytes(self) -> int:
        """Bytes still available to new models: budget minus resident and reserved, or the device's free memory."""
        with self._lock:
            reserved = sum(self._reserved.values())
            resident = sum(m.memory_bytes for m in self._resident.values())
        if self.memory_budget_bytes is None:
            return self.hardware.available_memory_bytes() - reserved
        return self.memory_budget_bytes - resident - reserved
