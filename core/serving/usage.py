"""What the shared models cost right now: a snapshot for the Resources panel."""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.errors import PlaygroundError
from core.models.hardware import parse_precision
from core.models.loading import ModelKey
from core.serving.registry import ModelRegistry


@dataclass(frozen=True)
class ResidentUsage:
    model_id: str
    precision: str
    device: str
    backend: str
    memory_bytes: int  # measured tensor storage
    idle_s: float  # seconds since a request last asked for it
    running: int  # requests decoding in its batch (or on the single-request path)
    waiting: int  # requests waiting for a free batch row
    peak_rows: int  # most requests that shared one forward pass


@dataclass(frozen=True)
class ResourceReport:
    models: tuple[ResidentUsage, ...]  # most recently used first
    budget_bytes: int | None  # None: the device's free memory is the budget
    free_bytes: int  # still available to new models

    @property
    def running(self) -> int:
        return sum(m.running for m in self.models)

    @property
    def waiting(self) -> int:
        return sum(m.waiting for m in self.models)


def report_resources(registry: ModelRegistry) -> ResourceReport:
    """Resident models with their memory and load, plus the budget."""
    now = time.monotonic()
    models = []
    for loaded in registry.resident():
        try:
            batcher = registry.batcher(loaded.key)
        except KeyError:  # unloaded since resident() was read
            continue
        waiting = batcher.waiting()
        models.append(ResidentUsage(loaded.key.model_id, loaded.key.precision.value, loaded.device, loaded.backend,
                                    loaded.memory_bytes, now - loaded.last_used, batcher.active() - waiting,
                                    waiting, batcher.peak_rows))
    return ResourceReport(tuple(models), registry.memory_budget_bytes, registry.free_bytes())


def unload_idle(registry: ModelRegistry, model_id: str, precision: str) -> bool:
    """Unload a resident model unless it is answering requests; False when it was not resident."""
    key = ModelKey(model_id, parse_precision(precision))
    running = registry.running(key)
    if running:
        raise PlaygroundError(f"{model_id} ({precision}) is answering {running} request(s); "
                              "unload it when they finish.")
    return registry.unload(key)
