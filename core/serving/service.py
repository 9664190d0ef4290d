"""Service: the one entry every front end calls (UI tabs, /chat, /caption, the OpenAI-compatible API).

It validates a request, admits it (the registry loads or refuses the model under the memory budget), routes it
(the model's batcher shares forward passes; pixels and long prompts take the single-request path, still counted)
and streams typed events. It raises only PlaygroundErrors. Front ends translate widgets or JSON into
(request, model, precision, sampling) and events back into widgets or JSON, nothing more.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from core.config import LimitsConfig
from core.errors import BadSettingError, UnsupportedPrecisionError
from core.generation.batch_caption import CaptionBatchRequest, CaptionRow, caption_many
from core.generation.prompting import ChatRequest
from core.generation.sampling import SamplingParams
from core.generation.stream import GenerationStats, TextStream, prepare_chat
from core.generation.vision import VisionRequest, prepare_vision
from core.models.hardware import Precision, parse_precision
from core.quant.backends import unavailable_reason
from core.serving.registry import ModelRegistry
from core.serving.runner import GpuRunner
from core.serving.stops import StopBook
from core.serving.zerogpu import GpuDecorator, ZeroGpuSection

GenerationRequest = ChatRequest | VisionRequest


@dataclass(frozen=True)
class ContextMeter:
    """Sent once, before the first token: how much of the window the prompt takes and what was trimmed."""

    summary: str
    prompt_tokens: int
    window: int


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Notice:
    """Something the user should know about this answer (e.g. it was cut to fit a ZeroGPU slot)."""

    text: str


@dataclass(frozen=True)
class Finished:
    """Sent once, last."""

    stats: GenerationStats
    backend: str


@dataclass(frozen=True)
class CaptionRows:
    """Rows of a batch caption, sent as each batch of images finishes (refused files first)."""

    rows: tuple[CaptionRow, ...]


ServiceEvent = ContextMeter | TextDelta | Notice | Finished | CaptionRows  # small and picklable: may cross processes


class Service:
    """Validate, admit, route and stream generation requests for every front end."""

    def __init__(self, registry: ModelRegistry, limits: LimitsConfig, zero: ZeroGpuSection | None = None,
                 decorate: GpuDecorator | None = None) -> None:
        self.registry, self.limits = registry, limits
        self.stops = StopBook()
        self.runner = GpuRunner(self._serve, registry, zero, decorate)
        self.batch_runner = GpuRunner(self._serve_batch, registry, zero, decorate)

    def validate(self, request: GenerationRequest | CaptionBatchRequest, model_id: str, precision: Precision | str,
                 params: SamplingParams) -> Precision:
        """Check settings, sizes, model and precision before anything loads; the parsed precision."""
        params.check(self.limits.max_new_tokens)
        request.check_size(self.limits.max_prompt_chars)
        entry = self.registry.catalog.get(model_id)
        chosen = parse_precision(precision)
        if isinstance(request, VisionRequest | CaptionBatchRequest) and entry.kind != "vision":
            raise BadSettingError(f"{model_id} is a text model and cannot see images; pick a vision model.")
        reason = unavailable_reason(entry, chosen, self.registry.hardware)
        if reason:
            raise UnsupportedPrecisionError(f"{chosen.label} is not available for {model_id}: {reason}")
        return chosen

    def stream(self, request: GenerationRequest, model_id: str, precision: Precision | str,
               params: SamplingParams, session: str | None = None,
               stop: threading.Event | None = None) -> Iterator[ServiceEvent]:
        """Validate now, then the answer's events. Stop: `stop`, self.stop(session), or closing the iterator."""
        chosen = self.validate(request, model_id, precision, params)
        event = stop or threading.Event()
        if session is not None:
            self.stops.begin(session, event)
        return self._events(request, model_id, chosen, params, session, event)

    def caption_batch(self, request: CaptionBatchRequest, model_id: str, precision: Precision | str,
                      params: SamplingParams, session: str | None = None,
                      stop: threading.Event | None = None) -> Iterator[ServiceEvent]:
        """Validate now, then CaptionRows batch by batch (one generate per batch of images); Stop as in stream."""
        chosen = self.validate(request, model_id, precision, params)
        event = stop or threading.Event()
        if session is not None:
            self.stops.begin(session, event)
        return self._batch_events(request, model_id, chosen, params, session, event)

    def stop(self, session: str) -> bool:
        """Stop the answer running for this session; False when none was."""
        return self.stops.stop(session)

    def open_stream(self, request: GenerationRequest, model_id: str, precision: Precision | str,
                    params: SamplingParams, stop: threading.Event) -> TextStream:
        """Load (once) and route one request: the model's batcher, or the counted single-request path."""
        loaded = self.registry.get(model_id, precision)
        if isinstance(request, VisionRequest):
            plan, inputs = prepare_vision(loaded, request, params, self.limits.max_context_tokens)
        else:
            plan, inputs = prepare_chat(loaded, request, params, self.limits.max_context_tokens)
        batcher = self.registry.batcher(loaded.key)
        return batcher.stream(inputs, params, stop, self.limits.stream_timeout_s, plan)

    def _events(self, request: GenerationRequest, model_id: str, precision: Precision, params: SamplingParams,
                session: str | None, stop: threading.Event) -> Iterator[ServiceEvent]:
        try:
            yield from self.runner.run(stop, model_id, precision.value, request, params, Notice)
        finally:
            if session is not None:
                self.stops.finish(session, stop)

    def _batch_events(self, request: CaptionBatchRequest, model_id: str, precision: Precision,
                      params: SamplingParams, session: str | None, stop: threading.Event) -> Iterator[ServiceEvent]:
        try:
            yield from self.batch_runner.run(stop, model_id, precision.value, request, params, Notice)
        finally:
            if session is not None:
                self.stops.finish(session, stop)

    def _serve_batch(self, stop: threading.Event, model_id: str, precision: str, request: CaptionBatchRequest,
                     params: SamplingParams) -> Iterator[ServiceEvent]:
        """What the batch runner runs: load once, then one generate per batch of images."""
        loaded = self.registry.get(model_id, precision)
        for rows in caption_many(loaded, request.items, request.style, params, stop, request.batch_size):
            yield CaptionRows(tuple(rows))

    def _serve(self, stop: threading.Event, model_id: str, precision: str, request: GenerationRequest,
               params: SamplingParams) -> Iterator[ServiceEvent]:
        """What the runner runs (in ZeroGPU's worker there): load, route, stream."""
        stream = self.open_stream(request, model_id, precision, params, stop)
        plan = stream.plan
        if plan is not None:
            yield ContextMeter(plan.summary(), plan.prompt_tokens, plan.window)
        for delta in stream:
            yield TextDelta(delta)
        assert stream.stats is not None
        yield Finished(stream.stats, stream.loaded.backend)
