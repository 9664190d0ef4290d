"""Chat generation where the GPU is: under @spaces.GPU on ZeroGPU, in this process everywhere else."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from core.config import LimitsConfig
from core.generation import GenerationStats, SamplingParams, TextStream, stream_chat
from core.loading import LoadedModel
from core.prompting import ChatRequest
from core.registry import ModelRegistry
from core.space.config import ZeroGpuSection, load_space_config
from core.zerogpu import GpuBudget, GpuDecorator, gpu_decorator, plan_budget, zero_gpu_enabled

CHARS_PER_TOKEN = 3  # a pessimistic guess for sizing a GPU slot before tokenizing


@dataclass(frozen=True)
class ChatUpdate:
    """One step of an answer; small and picklable, since on ZeroGPU it crosses a process boundary."""

    delta: str = ""
    meter: str | None = None  # the context plan's summary, sent once before the first token
    stats: GenerationStats | None = None  # sent once, last
    backend: str = ""
    note: str = ""  # e.g. the request was cut to fit ZeroGPU's time limit


class GpuChat:
    """Runs stream_chat through the GPU decorator (if any); Stop reaches the model in both cases."""

    def __init__(self, registry: ModelRegistry, limits: LimitsConfig, zero: ZeroGpuSection | None = None,
                 decorate: GpuDecorator | None = None) -> None:
        self.registry, self.limits, self.zero = registry, limits, zero
        self.remote = decorate is not None  # True: the task may run in another process (ZeroGPU's worker)
        self._lock = threading.Lock()
        self._stops: dict[str, threading.Event] = {}
        # Decorated once, here, before launch: ZeroGPU registers its tasks when the app starts.
        self._task = decorate(self._run, self.duration_s) if decorate else self._run

    @classmethod
    def for_this_machine(cls, registry: ModelRegistry, limits: LimitsConfig) -> GpuChat:
        """@spaces.GPU with spaces_config.yaml's limits on ZeroGPU; plain in-process elsewhere."""
        if not zero_gpu_enabled():
            return cls(registry, limits)
        zero = load_space_config().zero_gpu
        return cls(registry, limits, zero, gpu_decorator(zero.size))

    def budget(self, model_id: str, precision: str, request: ChatRequest, params: SamplingParams) -> GpuBudget | None:
        """The GPU slot this request gets on ZeroGPU; None when there is no such limit."""
        if self.zero is None:
            return None
        chars = len(request.message) + len(request.system) + len(request.document)
        chars += sum(len(t.content) for t in request.history)
        prompt_tokens = min(chars // CHARS_PER_TOKEN, self.limits.max_context_tokens or 32768)
        resident = any(m.key.model_id == model_id and m.key.precision.value == precision
                       for m in self.registry.resident())
        return plan_budget(self.zero, prompt_tokens, params.max_new_tokens, precision, resident)

    def duration_s(self, stop_id: str, model_id: str, precision: str, request: ChatRequest,
                   params: SamplingParams) -> int:
        """ZeroGPU's dynamic duration: called with the task's own arguments."""
        budget = self.budget(model_id, precision, request, params)
        return budget.duration_s if budget else 60

    def stream(self, stop: threading.Event, model_id: str, precision: str, request: ChatRequest,
               params: SamplingParams) -> Iterator[ChatUpdate]:
        """The answer's updates; setting stop ends it (in a ZeroGPU worker too, by closing the task)."""
        budget = self.budget(model_id, precision, request, params)
        if budget is not None:
            params = replace(params, max_new_tokens=budget.max_new_tokens)
        stop_id = uuid.uuid4().hex
        with self._lock:
            self._stops[stop_id] = stop
        updates = self._task(stop_id, model_id, str(precision), request, params)
        try:
            if budget is not None and budget.note:
                yield ChatUpdate(note=budget.note)
            for update in updates:
                yield update
                if stop.is_set() and self.remote:  # the worker cannot see this process's event
                    break
        finally:
            updates.close()  # on ZeroGPU: tells the worker to stop; here: stops the generate thread
            with self._lock:
                self._stops.pop(stop_id, None)

    def _run(self, stop_id: str, model_id: str, precision: str, request: ChatRequest,
             params: SamplingParams) -> Iterator[ChatUpdate]:
        with self._lock:  # a ZeroGPU worker (another process) finds no event: closing the generator stops it
            stop = self._stops.get(stop_id) or threading.Event()
        loaded = self.registry.get(model_id, precision)
        stream = self.open_stream(loaded, request, params, stop)
        yield ChatUpdate(meter=stream.plan.summary() if stream.plan else "")
        for delta in stream:
            yield ChatUpdate(delta=delta)
        yield ChatUpdate(stats=stream.stats, backend=loaded.backend)

    def open_stream(self, loaded: LoadedModel, request: Any, params: SamplingParams,
                    stop: threading.Event) -> TextStream:
        """The one step subclasses change: which core stream serves the request."""
        return stream_chat(loaded, request, params, stop, self.limits.stream_timeout_s,
                           self.limits.max_context_tokens)
