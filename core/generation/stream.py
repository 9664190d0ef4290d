"""Streaming generation: an iterator of text deltas that a Stop really stops."""

from __future__ import annotations

import gc
import math
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache, StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from core.errors import GenerationError, OutOfMemoryError
from core.generation.prompting import ChatRequest, ContextPlan, PromptRequest, plan_context, plan_prompt
from core.generation.sampling import SamplingParams
from core.models.loading import LoadedModel

PREFILL_CHUNK = 2048  # prompt tokens per forward pass during prefill
HANDOFF_S = 0.02  # a streamer wakes its consumer at most this often (50 times a second)


@dataclass(frozen=True)
class GenerationStats:
    prompt_tokens: int
    new_tokens: int
    ttft_s: float  # request start -> first generated token
    total_s: float
    device: str
    precision: str
    stopped: bool  # ended by Stop rather than by eos or the token limit

    @property
    def tokens_per_s(self) -> float:
        """Decode rate after the first token."""
        decode_s = self.total_s - self.ttft_s
        return (self.new_tokens - 1) / decode_s if self.new_tokens > 1 and decode_s > 0 else 0.0

    def summary(self) -> str:
        stop = " · stopped" if self.stopped else ""
        return (f"{self.ttft_s:.2f} s to first token · {self.tokens_per_s:.1f} tok/s · "
                f"{self.new_tokens} tokens · {self.device} {self.precision}{stop}")


class EventStop(StoppingCriteria):
    """Ends generate() at the next step once any of the events is set."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        stop = any(e.is_set() for e in self.events)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class MeteredStreamer(TextIteratorStreamer):
    """TextIteratorStreamer that also counts generated tokens and times the first one.

    It wakes its consumer only with text (transformers queues an empty string for every token that does not end a
    word) and at most once per handoff_s; the first text and the last are never held back. Each wake-up is a thread
    switch that the generating thread pays for.
    """

    def __init__(self, tokenizer: Any, timeout: float, handoff_s: float = HANDOFF_S) -> None:
        super().__init__(tokenizer, skip_prompt=True, timeout=timeout, skip_special_tokens=True)
        self.new_tokens = 0
        self.first_token_at: float | None = None
        self.handoff_s = handoff_s
        self._pending = ""
        self._handed = -math.inf  # perf_counter() of the last wake-up

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self._pending += text
        now = time.perf_counter()
        if self._pending and (stream_end or now - self._handed >= self.handoff_s):
            self.text_queue.put(self._pending, timeout=self.timeout)
            self._pending, self._handed = "", now
        if stream_end:
            self.text_queue.put(self.stop_signal, timeout=self.timeout)

    def put(self, value: torch.Tensor) -> None:
        is_prompt = self.skip_prompt and self.next_tokens_are_prompt
        super().put(value)
        if not is_prompt:
            self.new_tokens += int(value.numel())
            self.first_token_at = self.first_token_at or time.perf_counter()
            if self.new_tokens == value.numel():
                self._show_first_token()

    def _show_first_token(self) -> None:
        """Hand the rest of the first token's text over at once, though its word may go on: transformers hands over
        only up to its last space (a leading one, for " The") and would hold the rest until the next word begins, a
        whole decode step later. A partial UTF-8 character still waits; after a newline the cache is already empty."""
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if len(text) > self.print_len and not text.endswith("\ufffd"):
            rest, self.print_len = text[self.print_len:], len(text)
            self.on_finalized_text(rest)


class TextStream:
    """Iterate for text deltas; afterwards .stats holds the measurements."""

    def __init__(self, loaded: LoadedModel, inputs: dict[str, torch.Tensor], params: SamplingParams,
                 stop: threading.Event, timeout_s: float, plan: ContextPlan | None = None) -> None:
        self.loaded, self.inputs, self.params, self.stop = loaded, inputs, params, stop
        self.timeout_s = timeout_s
        self.plan = plan
        self.stats: GenerationStats | None = None

    def __iter__(self) -> Iterator[str]:
        streamer = MeteredStreamer(self.loaded.tokenizer, self.timeout_s)
        abort, errors = threading.Event(), []
        thread = threading.Thread(target=self._generate, args=(streamer, abort, errors), daemon=True)
        start = time.perf_counter()
        thread.start()
        try:
            yield from streamer
        except queue.Empty:
            raise GenerationError(f"The model produced nothing for {self.timeout_s:.0f} s and was stopped.") from None
        finally:
            abort.set()  # a closed consumer (disconnect, error) stops the model too
            thread.join()
        if errors:
            raise readable_error(errors[0])
        first = streamer.first_token_at or time.perf_counter()
        prompt_tokens = int(self.inputs["input_ids"].shape[-1])
        self.stats = GenerationStats(prompt_tokens, streamer.new_tokens, first - start, time.perf_counter() - start,
                                     self.loaded.device, self.loaded.key.precision.value, self.stop.is_set())

    def _generate(self, streamer: MeteredStreamer, abort: threading.Event, errors: list[BaseException]) -> None:
        try:
            if self.params.seed is not None:
                torch.manual_seed(self.params.seed)
            criteria = StoppingCriteriaList([EventStop(self.stop, abort)])
            with torch.inference_mode():
                cache = prefill_in_chunks(self.loaded.model, self.inputs, (self.stop, abort))
                if self.stop.is_set() or abort.is_set():  # stopped during a long prefill
                    streamer.end()
                    return
                self.loaded.model.generate(**self.inputs, **self.params.generate_kwargs(), streamer=streamer,
                                           stopping_criteria=criteria, pad_token_id=_pad_id(self.loaded.tokenizer),
                                           **({"past_key_values": cache} if cache is not None else {}))
        except BaseException as exc:  # reported to the consumer thread, which raises it readably
            errors.append(exc)
            streamer.end()


def prefill_in_chunks(model: Any, inputs: dict[str, torch.Tensor], events: tuple[threading.Event, ...],
                      chunk: int = PREFILL_CHUNK) -> DynamicCache | None:
    """Fill a KV cache with all but the last prompt token, chunk by chunk; None for short or multimodal prompts.

    Attention memory then grows with chunk * length instead of length**2 (16K tokens: 1.1 GB instead of
    10.6 GB on the tiny DeepseekV3), and Stop is honoured between chunks of a long prefill.
    """
    input_ids = inputs["input_ids"]  # (1, seq)
    if set(inputs) - {"input_ids", "attention_mask"} or input_ids.shape[0] != 1 or input_ids.shape[1] <= chunk:
        return None
    cache = DynamicCache(config=model.config)
    for start in range(0, input_ids.shape[1] - 1, chunk):
        if any(e.is_set() for e in events):
            break
        end = min(start + chunk, input_ids.shape[1] - 1)
        model(input_ids[:, start:end], past_key_values=cache, use_cache=True, logits_to_keep=1)
    return cache


def prepare_chat(loaded: LoadedModel, request: ChatRequest | PromptRequest, params: SamplingParams,
                 max_context_tokens: int | None = None) -> tuple[ContextPlan, dict[str, torch.Tensor]]:
    """Plan the prompt (a chat trimmed to the window, or a plain prompt): the plan and the (1, seq) ids and mask."""
    window = min(loaded.context_window, max_context_tokens or loaded.context_window)
    if isinstance(request, PromptRequest):
        plan = plan_prompt(loaded.tokenizer, request, window, params.max_new_tokens)
    else:
        plan = plan_context(loaded.tokenizer, request, window, params.max_new_tokens)
    input_ids = torch.tensor([plan.input_ids], device=loaded.device)
    return plan, {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def stream_chat(loaded: LoadedModel, request: ChatRequest, params: SamplingParams, stop: threading.Event,
                timeout_s: float = 600.0, max_context_tokens: int | None = None) -> TextStream:
    """The single-request path: one model.generate for this request alone, streamed as text deltas."""
    plan, inputs = prepare_chat(loaded, request, params, max_context_tokens)
    return TextStream(loaded, inputs, params, stop, timeout_s, plan)


def _pad_id(tokenizer: Any) -> int | None:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def readable_error(exc: BaseException) -> Exception:
    """A PlaygroundError a person can read for an exception raised while generating."""
    if isinstance(exc, torch.OutOfMemoryError):
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return OutOfMemoryError(
            "The model ran out of memory while answering. Try a shorter prompt or fewer new tokens."
        )
    return GenerationError(f"Generation failed: {type(exc).__name__}: {exc}")
