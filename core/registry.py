"""ModelRegistry: exactly one resident model per (model, precision), shared by every user."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import torch

from core.catalog import Catalog, CatalogEntry
from core.errors import UnsupportedPrecisionError
from core.hardware import Hardware, Precision
from core.loading import LoadedModel, ModelKey, load_model

Loader = Callable[..., LoadedModel]  # (entry, precision, hardware) -> LoadedModel


class ModelRegistry:
    """Loads each ModelKey once, however many threads ask at the same time."""

    def __init__(self, catalog: Catalog, hardware: Hardware, loader: Loader = load_model) -> None:
        self.catalog = catalog
        self.hardware = hardware
        self._loader = loader
        self._lock = threading.Lock()
        self._resident: dict[ModelKey, LoadedModel] = {}
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
            loaded = self._loader(self.catalog.get(key.model_id), key.precision, self.hardware)
        except BaseException as exc:  # waiters get the same error; the next request retries
            with self._lock:
                del self._loading[key]
            future.set_exception(exc)
            return
        with self._lock:
            self._resident[key] = loaded
            del self._loading[key]
        future.set_result(loaded)

    def register(self, entry: CatalogEntry) -> None:
        """Add a runtime catalog entry (e.g. a fine-tuned adapter); one with the same id is replaced and unloaded."""
        with self._lock:
            kept = tuple(e for e in self.catalog.entries if e.model_id != entry.model_id)
            self.catalog = Catalog((*kept, entry))
            stale = [key for key in self._resident if key.model_id == entry.model_id]
        for key in stale:
            self.unload(key)

    def resident(self) -> list[LoadedModel]:
        """Models in memory now, most recently used first."""
        with self._lock:
            return sorted(self._resident.values(), key=lambda m: m.last_used, reverse=True)

    def unload(self, key: ModelKey) -> bool:
        """Drop a resident model and return its memory; False if it was not resident."""
        with self._lock:
            loaded = self._resident.pop(key, None)
        if loaded is None:
            return False
        del loaded
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return True


def parse_precision(value: Precision | str) -> Precision:
    """Precision from a picker or API string, or UnsupportedPrecisionError listing the known ones."""
    try:
        return Precision(value)
    except ValueError:
        known = ", ".join(p.value for p in Precision)
        raise UnsupportedPrecisionError(f"Unknown precision '{value}'. Known precisions: {known}.") from None
