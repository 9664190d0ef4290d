"""Service: the one entry every front end calls (UI tabs, /chat, /caption, the OpenAI-compatible API).

It validates a request, admits it (the registry loads or refuses the model under the memory budget), routes it
(the model's batcher shares forward passes; pixels and long prompts take the single-request path, still counted)
and streams typed events. It raises only PlaygroundErrors. Front ends translate widgets or JSON into
(request, model, precision, sampling) and events back into widgets or JSON, nothing more.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from PIL import Image

from core.config import LimitsConfig, ServerConfig
from core.errors import (
    InputTooLongError,
    PlaygroundError,
)
from core.generation.batch_caption import CaptionBatchRequest, CaptionRow, caption_many
from core.generation.prompting import check_chars, check_texts
from core.generation.sampling import SamplingParams
from core.generation.stream import TextStream, prepare_chat
from core.generation.vision import CaptionStyle, VisionRequest, prepare_vision
from core.models.hardware import Precision, parse_precision
from core.models.loading import ModelKey
from core.quant.comparison import ComparisonRun, Progress, compare_precisions
from core.quant.stages import WatchedLoad
from core.quant.vision_comparison import CaptionColumn, compare_caption_precisions
from core.serving.admission import Admission
from core.serving.events import CaptionRows, ContextMeter, Finished, Loading, Notice, ServiceEvent, TextDelta
from core.serving.own_thread import call_on_own_thread, iterate_on_own_thread
from core.serving.registry import ModelRegistry
from core.serving.remotes import RemoteHub
from core.serving.request_checks import GenerationRequest, RequestChecks
from core.serving.request_log import RequestRecord, log_refused, logged_request
from core.serving.runner import GpuRunner
from core.serving.stops import StopBook
from core.serving.zerogpu import GpuDecorator, ZeroGpuSection


class Service:
    """Validate, admit, route and stream generation requests for every front end."""

    def __init__(self, registry: ModelRegistry, limits: LimitsConfig, zero: ZeroGpuSection | None = None,
                 decorate: GpuDecorator | None = None, remotes: RemoteHub | None = None,
                 server: ServerConfig | None = None, allow_calibration: bool = True) -> None:
        self.registry, self.limits = registry, limits
        self.remotes = remotes or RemoteHub()  # models served elsewhere: routed to their server, never loaded here
        for entry in self.remotes.entries():  # in the catalog, so every picker and check sees them
            registry.register(entry)
        self.checks = RequestChecks(registry, limits, self.remotes, allow_calibration)
        self.stops = StopBook()
        self.runner = GpuRunner(self._serve, registry, zero, decorate)
        self.batch_runner = GpuRunner(self._serve_batch, registry, zero, decorate)
        server = server or ServerConfig()
        # Answers stream side by side (the batcher shares forward passes): no waiting line, refused beyond the bound.
        self.generation = Admission("chat/caption", server.max_in_flight, 0, server.max_in_flight_per_client)
        # A comparison loads and runs every precision in turn: one at a time, a short line, one per client.
        self.heavy = Admission("compare", 1, server.heavy_waiting, 1)

    @property
    def allow_calibration(self) -> bool:
        """Whether a GPTQ precision may calibrate on request (models.allow_calibration)."""
        return self.checks.allow_calibration

    def validate(self, request: GenerationRequest | CaptionBatchRequest, model_id: str, precision: Precision | str,
                 params: SamplingParams) -> Precision:
        """Check settings, sizes, model and precision before anything loads; the parsed precision."""
        return self.checks.validate(request, model_id, precision, params)

    def compare(self, model_id: str, precisions: list[str], prompt: str, params: SamplingParams,
                client: str | None = None, progress: Progress | None = None) -> ComparisonRun:
        """compare_precisions under chat's size limits, one comparison at a time (a short line, then busy)."""
        params.check(self.limits.max_new_tokens)
        check_texts({"prompt": prompt, "model": model_id})
        check_chars(len(prompt), self.limits.max_prompt_chars)
        for precision in precisions or []:
            self.checks.check_calibration(model_id, parse_precision(precision))
        with self.heavy.slot(client):
            return call_on_own_thread(lambda: self._compare(model_id, precisions, prompt, params, progress),
                                      "comparison")

    def _compare(self, model_id: str, precisions: list[str], prompt: str, params: SamplingParams,
                 progress: Progress | None) -> ComparisonRun:
        reference = self.registry.get(model_id, self.registry.hardware.full_precision)
        tokens = len(reference.tokenizer(prompt)["input_ids"])
        if tokens > self.limits.max_compare_prompt_tokens:
            raise InputTooLongError(f"The prompt is {tokens:,} tokens; a comparison takes at most "
                                    f"{self.limits.max_compare_prompt_tokens:,}. Shorten it.")
        return compare_precisions(self.registry, model_id, precisions, prompt, params, progress)

    def compare_captions(self, model_id: str, precisions: list[str], images: list[Image.Image],
                         style: CaptionStyle = "short", client: str | None = None) -> list[CaptionColumn]:
        """compare_caption_precisions, one comparison at a time (as compare), on a thread of its own."""
        with self.heavy.slot(client):
            return call_on_own_thread(lambda: compare_caption_precisions(self.registry, model_id, precisions, images,
                                                                         style), "caption-comparison")

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
        if self.remotes.serves(model_id):  # straight to its server: no GPU slot, no memory budget
            events = self.remotes.stream(request, model_id, params, event)
        else:
            events = self.runner.run(event, model_id, chosen.value, request, params, Notice)
        return self._finish(events, chosen, session, event, record, client)

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

    def _finish(self, events: Iterator[ServiceEvent], precision: Precision, session: str | None,
                stop: threading.Event, record: RequestRecord, client: str | None) -> Iterator[ServiceEvent]:
        """The events, inside an admission slot and logged as one line; the session's Stop is released after."""
        try:
            with logged_request(record.endpoint, record.model, precision.value) as record, \
                    self.generation.slot(client):
                for event in events:
                    if isinstance(event, TextDelta) and event.text:
                        record.mark_first_text()
                    if isinstance(event, Finished):
                        record.prompt_tokens, record.new_tokens = event.stats.prompt_tokens, event.stats.new_tokens
                        record.outcome = "stopped" if event.stats.stopped else "ok"
                    yield event
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
        """What the batch runner runs: load once, then one generate per batch of images (on a thread of their own)."""
        def batches() -> Iterator[list[CaptionRow]]:
            loaded = self.registry.get(model_id, precision)
            return caption_many(loaded, request.items, request.style, params, stop, request.batch_size)

        for rows in iterate_on_own_thread(batches, "caption-batch"):
            yield CaptionRows(tuple(rows))

    def _serve(self, stop: threading.Event, model_id: str, precision: str, request: GenerationRequest,
               params: SamplingParams) -> Iterator[ServiceEvent]:
        """What the runner runs (in ZeroGPU's worker there): load, route, stream."""
        yield from self._load(model_id, precision)
        stream = self.open_stream(request, model_id, precision, params, stop)
        plan = stream.plan
        if plan is not None:
            yield ContextMeter(plan.summary(), plan.prompt_tokens, plan.window, plan.document_tokens)
        for delta in stream:
            yield TextDelta(delta)
        assert stream.stats is not None
        yield Finished(stream.stats, stream.loaded.backend)

    def _load(self, model_id: str, precision: str) -> Iterator[Loading]:
        """Load the model if it is not resident, with a Loading event every stages.LOAD_TICK_S; errors are re-raised."""
        key = ModelKey(self.registry.catalog.get(model_id).model_id, parse_precision(precision))
        if any(m.key == key for m in self.registry.resident()):
            return
        stage = f"Loading {key.model_id} as {key.precision.label}"
        if key.precision in (Precision.GPTQ_INT4, Precision.GPTQ_INT8):
            stage += " (GPTQ calibrates on first use, then reads its cache)"
        load = WatchedLoad(lambda: self.registry.get(model_id, key.precision), "model-load")  # load-once: a Stop
        for current, elapsed in load.ticks():  # leaves it loading; `current`: what GPTQ calibration is doing now
            yield Loading(f"{stage}: {current}" if current else stage, elapsed)
        load.result()  # the load's error, if any, raised here
        yield Loading(stage, load.elapsed_s, done=True)
