"""Where generation runs: under @spaces.GPU on ZeroGPU (a slot sized per request), in this process elsewhere.

One runner serves chat and captions alike: it sees a request only through its text size and whether it carries
an image, and hands the Service's own task to ZeroGPU, decorated once at start-up as ZeroGPU requires.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, Protocol

from core.generation.sampling import SamplingParams
from core.serving.registry import ModelRegistry
from core.serving.zerogpu import GpuBudget, GpuDecorator, ZeroGpuSection, plan_budget

CHARS_PER_TOKEN = 3  # a pessimistic guess for sizing a GPU slot before tokenizing
IMAGE_TOKENS_GUESS = 576  # DeepSeek-VL 1.3B: (384 px / 16 px)^2 image tokens; sizes a slot before encoding


class SizedRequest(Protocol):
    """What the runner needs to know of a request to size its GPU slot."""

    def text_chars(self) -> int: ...


Task = Callable[[threading.Event, str, str, Any, SamplingParams], Iterator[Any]]


class GpuRunner:
    """Runs a task through the GPU decorator (if any); Stop reaches the model in both cases."""

    def __init__(self, task: Task, registry: ModelRegistry, zero: ZeroGpuSection | None = None,
                 decorate: GpuDecorator | None = None) -> None:
        self._inner, self.registry, self.zero = task, registry, zero
        self.remote = decorate is not None  # True: the task may run in another process (ZeroGPU's worker)
        self._lock = threading.Lock()
        self._stops: dict[str, threading.Event] = {}
        # Decorated once, here, before launch: ZeroGPU registers its tasks when the app starts.
        self._task = decorate(self._run, self.duration_s) if decorate else self._run

    def budget(self, model_id: str, precision: str, request: SizedRequest, params: SamplingParams) -> GpuBudget | None:
        """The GPU slot this request gets on ZeroGPU; None when there is no such limit."""
        if self.zero is None:
            return None
        prompt_tokens = request.text_chars() // CHARS_PER_TOKEN
        prompt_tokens += IMAGE_TOKENS_GUESS if getattr(request, "image", None) is not None else 0
        resident = any(m.key.model_id == model_id and m.key.precision.value == precision
                       for m in self.registry.resident())
        return plan_budget(self.zero, prompt_tokens, params.max_new_tokens, precision, resident)

    def duration_s(self, stop_id: str, model_id: str, precision: str, request: SizedRequest,
                   params: SamplingParams) -> int:
        """ZeroGPU's dynamic duration: called with the task's own arguments."""
        budget = self.budget(model_id, precision, request, params)
        return budget.duration_s if budget else 60

    def run(self, stop: threading.Event, model_id: str, precision: str, request: SizedRequest,
            params: SamplingParams, note: Callable[[str], Any]) -> Iterator[Any]:
        """The task's events (a budget note first, made by `note`); setting stop ends it, in a ZeroGPU worker too."""
        budget = self.budget(model_id, precision, request, params)
        if budget is not None:
            params = replace(params, max_new_tokens=budget.max_new_tokens)
        stop_id = uuid.uuid4().hex
        with self._lock:
            self._stops[stop_id] = stop
        events = self._task(stop_id, model_id, precision, request, params)
        try:
            if budget is not None and budget.note:
                yield note(budget.note)
            for event in events:
                yield event
                if stop.is_set() and self.remote:  # the worker cannot see this process's event
                    break
        finally:
            events.close()  # on ZeroGPU: tells the worker to stop; here: stops the generate thread
            with self._lock:
                self._stops.pop(stop_id, None)

    def _run(self, stop_id: str, model_id: str, precision: str, request: Any,
             params: SamplingParams) -> Iterator[Any]:
        with self._lock:  # a ZeroGPU worker (another process) finds no event: closing the generator stops it
            stop = self._stops.get(stop_id) or threading.Event()
        yield from self._inner(stop, model_id, precision, request, params)
