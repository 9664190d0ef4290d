"""The runner a llama.cpp model gets instead of a Batcher: the same interface, one answer at a time."""

from __future__ import annotations

import threading
from typing import Any

from core.errors import BusyError
from core.generation.prompting import ContextPlan
from core.generation.sampling import SamplingParams
from core.models.loading import LoadedModel
from core.quant.gguf.stream import GGUFTextStream


class GGUFRunner:
    """Serves one resident llama.cpp model; requests beyond the first wait for it (up to max_waiting)."""

    def __init__(self, loaded: LoadedModel, max_waiting: int = 64) -> None:
        self.loaded, self.max_waiting = loaded, max_waiting
        self._lock = threading.Lock()
        self._active = 0  # running + waiting
        self.peak_rows = 1  # llama.cpp serves one sequence at a time here

    def stream(self, inputs: dict[str, Any], params: SamplingParams, stop: threading.Event, timeout_s: float,
               plan: ContextPlan | None) -> GGUFTextStream:
        """A stream of the answer to inputs' single prompt; BusyError when too many already wait."""
        if self.waiting() >= self.max_waiting:
            raise BusyError(f"{self.waiting()} requests are waiting for {self.loaded.key.model_id} "
                            f"({self.loaded.key.precision.value}); try again shortly.")
        return GGUFTextStream(self.loaded, [int(t) for t in inputs["input_ids"][0]], params, stop, timeout_s, plan,
                              self._count)

    def active(self) -> int:
        """Requests running or waiting."""
        with self._lock:
            return self._active

    def waiting(self) -> int:
        """Requests waiting for the one running to finish."""
        with self._lock:
            return max(self._active - 1, 0)

    def _count(self, delta: int) -> None:
        with self._lock:
            self._active += delta
