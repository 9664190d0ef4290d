"""Captions where the GPU is: the GpuChat wrapper (ZeroGPU slot, Stop, updates) around stream_caption."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from core.generation import SamplingParams, TextStream
from core.gpu_chat import CHARS_PER_TOKEN, ChatUpdate, GpuChat
from core.loading import LoadedModel
from core.vision import VisionRequest, stream_caption
from core.zerogpu import GpuBudget, plan_budget

IMAGE_TOKENS_GUESS = 576  # DeepSeek-VL 1.3B: (384 px / 16 px)^2 image tokens; sizes a GPU slot before encoding


class GpuCaption(GpuChat):
    """GpuChat for VisionRequests: same ZeroGPU decoration, duration planning and Stop handling."""

    def budget(self, model_id: str, precision: str, request: Any, params: SamplingParams) -> GpuBudget | None:
        """The GPU slot this caption or question gets on ZeroGPU; None when there is no such limit."""
        if self.zero is None:
            return None
        chars = len(request.question) + len(request.system) + sum(len(t.content) for t in request.history)
        prompt_tokens = chars // CHARS_PER_TOKEN + IMAGE_TOKENS_GUESS
        resident = any(m.key.model_id == model_id and m.key.precision.value == precision
                       for m in self.registry.resident())
        return plan_budget(self.zero, prompt_tokens, params.max_new_tokens, precision, resident)

    def stream_caption(self, stop: threading.Event, model_id: str, precision: str, request: VisionRequest,
                       params: SamplingParams) -> Iterator[ChatUpdate]:
        """The caption's (or answer's) updates: meter, text deltas, then stats; setting stop ends it."""
        return self.stream(stop, model_id, precision, request, params)  # type: ignore[arg-type]

    def open_stream(self, loaded: LoadedModel, request: Any, params: SamplingParams,
                    stop: threading.Event) -> TextStream:
        """stream_caption in place of stream_chat; slot, Stop and updates stay GpuChat's."""
        return stream_caption(loaded, request, params, stop, self.limits.stream_timeout_s,
                              self.limits.max_context_tokens)
