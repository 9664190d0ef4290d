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

from core.config import LimitsConfig, ServerConfig
from core.errors import BadSettingError, InputTooLongError, PlaygroundError, UnsupportedPrecisionError
from core.generation.prompting import ChatRequest, check_chars, check_texts
from core.generation.sampling import SamplingParams
from core.generation.stream import GenerationStats, TextStream, prepare_chat
from core.generation.vision import VisionRequest, prepare_vision
from core.models.hardware import Precision, parse_precision
from core.quant import gptq
from core.quant.backends import unavailable_reason
from core.quant.comparison import ComparisonRun, Progress, compare_precisions
from core.quant.loaders import GPTQ_BITS
from core.serving.admission import Admission
from core.serving.registry import ModelRegistry
from core.serving.request_log import RequestRecord, log_refused, logged_request
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


ServiceEvent = ContextMeter | TextDelta | Notice | Finished  # small and picklable: may cross ZeroGPU's process


class Service:
    """Validate, admit, route and stream generation requests for every front end."""

    def __init__(self, registry: ModelRegistry, limits: LimitsConfig, zero: ZeroGpuSection | None = None,
                 decorate: GpuDecorator | None = None, server: ServerConfig | None = None,
                 allow_calibration: bool = True) -> None:
        self.registry, self.limits, self.allow_calibration = registry, limits, allow_calibration
        self.stops = StopBook()
        self.runner = GpuRunner(self._serve, registry, zero, decorate)
        server = server or ServerConfig()
        # Answers stream side by side (the batcher shares forward passes): no waiting line, refused beyond the bound.
        self.generation = Admission("chat/caption", server.max_in_flight, 0, server.max_in_flight_per_client)
        # A comparison loads and runs every precision in turn: one at a time, a short line, one per client.
        self.heavy = Admission("compare", 1, server.heavy_waiting, 1)

    def validate(self, request: GenerationRequest, model_id: str, precision: Precision | str,
                 params: SamplingParams) -> Precision:
        """Check settings, sizes, model and precision before anything loads; the parsed precision."""
        params.check(self.limits.max_new_tokens)
        request.check_size(self.limits.max_prompt_chars)
        check_texts({"model": model_id, "precision": getattr(precision, "value", precision)})
        entry = self.registry.catalog.get(model_id)
        chosen = parse_precision(precision)
        if isinstance(request, VisionRequest) and entry.kind != "vision":
            raise BadSettingError(f"{model_id} is a text model and cannot see images; pick a vision model.")
        reason = unavailable_reason(entry, chosen, self.registry.hardware)
        if reason:
            raise UnsupportedPrecisionError(f"{chosen.label} is not available for {model_id}: {reason}")
        self.check_calibration(model_id, chosen)
        return chosen

    def check_calibration(self, model_id: str, precision: Precision) -> None:
        """Refuse a GPTQ precision that would calibrate on request when calibration is switched off."""
        if self.allow_calibration or precision not in GPTQ_BITS:
            return
        if any(m.key.model_id == model_id and m.key.precision == precision for m in self.registry.resident()):
            return
        if gptq.needs_calibration(self.registry.catalog.get(model_id), GPTQ_BITS[precision]):
            raise UnsupportedPrecisionError(
                f"{precision.label} of {model_id} would need a GPTQ calibration first, and calibration is switched "
                "off on this server (models.allow_calibration). Pick another precision.")

    def compare(self, model_id: str, precisions: list[str], prompt: str, params: SamplingParams,
                client: str | None = None, progress: Progress | None = None) -> ComparisonRun:
        """compare_precisions under chat's size limits, one comparison at a time (a short line, then busy)."""
        params.check(self.limits.max_new_tokens)
        check_texts({"prompt": prompt, "model": model_id})
        check_chars(len(prompt), self.limits.max_prompt_chars)
        for precision in precisions or []:
            self.check_calibration(model_id, parse_precision(precision))
        with self.heavy.slot(client):
            reference = self.registry.get(model_id, self.registry.hardware.full_precision)
            tokens = len(reference.tokenizer(prompt)["input_ids"])
            if tokens > self.limits.max_compare_prompt_tokens:
                raise InputTooLongError(f"The prompt is {tokens:,} tokens; a comparison takes at most "
                                        f"{self.limits.max_compare_prompt_tokens:,}. Shorten it.")
            return compare_precisions(self.registry, model_id, precisions, prompt, params, progress)

    def stream(self, request: GenerationRequest, model_id: str, precision: Precision | str,
               params: SamplingParams, session: str | None = None,
               stop: threading.Event | None = None, client: str | None = None) -> Iterator[ServiceEvent]:
        """Validate now, then the answer's events. Stop: `stop`, self.stop(session), or closing the iterator."""
        record = RequestRecord("/caption" if isinstance(request, VisionRequest) else "/chat", model_id,
                               str(getattr(precision, "value", precision)))
        try:
            chosen = self.validate(request, model_id, precision, params)
        except PlaygroundError as exc:
            log_refused(record, exc)
            raise
        event = stop or threading.Event()
        if session is not None:
            self.stops.begin(session, event)
        return self._events(request, model_id, chosen, params, session, event, record, client)

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
                session: str | None, stop: threading.Event, record: RequestRecord,
                client: str | None) -> Iterator[ServiceEvent]:
        try:
            with logged_request(record.endpoint, model_id, precision.value) as record, self.generation.slot(client):
                for event in self.runner.run(stop, model_id, precision.value, request, params, Notice):
                    if isinstance(event, Finished):
                        record.prompt_tokens, record.new_tokens = event.stats.prompt_tokens, event.stats.new_tokens
                        record.outcome = "stopped" if event.stats.stopped else "ok"
                    yield event
        finally:
            if session is not None:
                self.stops.finish(session, stop)

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
