"""Streaming answers from a llama.cpp model: the same TextStream contract (text deltas, .plan, .stats, Stop)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import torch

from core.errors import BusyError, GenerationError
from core.generation import GenerationStats, SamplingParams
from core.gguf_model import GGUFCausalLM
from core.prompting import ContextPlan

PREFILL_CHUNK = 512  # prompt tokens per llama.cpp decode; Stop is checked between chunks


class GGUFRunner:
    """Serves one llama.cpp model: one answer at a time (a llama.cpp context holds one sequence here)."""

    def __init__(self, loaded: Any, max_waiting: int = 64) -> None:
        self.loaded, self.max_waiting = loaded, max_waiting
        self._count = threading.Lock()
        self._active = 0  # running + waiting
        self.peak_rows = 1

    def stream(self, inputs: dict[str, torch.Tensor], params: SamplingParams, stop: threading.Event,
               timeout_s: float, plan: ContextPlan | None) -> GGUFTextStream:
        """A stream of the answer to inputs' single prompt."""
        with self._count:
            if self._active > self.max_waiting:
                raise BusyError(f"{self._active} requests are waiting for this llama.cpp model; try again shortly.")
        return GGUFTextStream(self, [int(t) for t in inputs["input_ids"][0]], params, stop, timeout_s, plan)

    def active(self) -> int:
        """Requests running or waiting."""
        return self._active

    def waiting(self) -> int:
        return max(self._active - 1, 0)

    def _enter(self, delta: int) -> None:
        with self._count:
            self._active += delta


class GGUFTextStream:
    """Iterate for text deltas; afterwards .stats holds the measurements (as core.generation.TextStream)."""

    def __init__(self, runner: GGUFRunner, prompt: list[int], params: SamplingParams, stop: threading.Event,
                 timeout_s: float, plan: ContextPlan | None) -> None:
        self.runner, self.prompt, self.params, self.stop = runner, prompt, params, stop
        self.timeout_s, self.plan = timeout_s, plan
        self.stats: GenerationStats | None = None

    def __iter__(self) -> Iterator[str]:
        loaded = self.runner.loaded
        model: GGUFCausalLM = loaded.model
        start = time.perf_counter()
        self.runner._enter(1)
        try:
            if not model.lock.acquire(timeout=self.timeout_s):
                raise GenerationError(f"The model was busy for {self.timeout_s:.0f} s; try again.")
            try:
                new, first = yield from self._generate(model, loaded.tokenizer, start)
            finally:
                model.lock.release()
        finally:
            self.runner._enter(-1)
        end = time.perf_counter()
        self.stats = GenerationStats(len(self.prompt), new, (first or end) - start, end - start, loaded.device,
                                     loaded.key.precision.value, self.stop.is_set())

    def _generate(self, model: GGUFCausalLM, tokenizer: Any, start: float) -> Iterator[str]:
        """Prefill in chunks (Stop between them), then sample token by token; returns (tokens, first-token time)."""
        llm, ids, text, first = model.llm, [], "", None
        eos = {tokenizer.eos_token_id, llm.token_eos()} - {None}
        try:
            llm.reset()
            for begin in range(0, len(self.prompt) - 1, PREFILL_CHUNK):
                if self.stop.is_set():
                    return 0, None
                llm.eval(self.prompt[begin:min(begin + PREFILL_CHUNK, len(self.prompt) - 1)])
            llm.set_seed(self.params.seed if self.params.seed is not None else random.getrandbits(31))
            for token in llm.generate(self.prompt, reset=True, **_sampling(self.params)):
                if self.stop.is_set() or token in eos:
                    break
                ids.append(int(token))
                first = first or time.perf_counter()
                decoded = tokenizer.decode(ids, skip_special_tokens=True)
                if not decoded.endswith("\ufffd"):  # wait for the rest of a multi-byte character
                    yield decoded[len(text):]
                    text = decoded
                if len(ids) >= self.params.max_new_tokens:
                    break
        except (RuntimeError, ValueError) as exc:
            raise GenerationError(f"llama.cpp failed while answering: {exc}") from None
        return len(ids), first


def _sampling(params: SamplingParams) -> dict[str, Any]:
    """llama.cpp sampler settings equivalent to transformers' (min-p and typical-p off; top_k 0 = off in both)."""
    return {"temp": params.temperature, "top_k": params.top_k if params.temperature else 1, "top_p": params.top_p,
            "min_p": 0.0, "typical_p": 1.0, "repeat_penalty": params.repetition_penalty}
