"""Streaming answers from a llama.cpp model: the TextStream contract (text deltas, .plan, .stats, Stop)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from core.errors import GenerationError
from core.generation.prompting import ContextPlan
from core.generation.sampling import SamplingParams
from core.generation.stream import GenerationStats
from core.models.loading import LoadedModel
from core.quant.gguf.model import GGUFCausalLM

PREFILL_CHUNK = 512  # prompt tokens per llama.cpp decode; Stop is checked between chunks


class GGUFTextStream:
    """Iterate for text deltas; afterwards .stats holds the measurements (as core.generation.stream.TextStream).

    One answer at a time per model (a llama.cpp context holds one sequence here): a second stream waits for
    the model's lock, up to timeout_s. on_active(+1/-1) lets a runner count requests running or waiting.
    """

    def __init__(self, loaded: LoadedModel, prompt: list[int], params: SamplingParams, stop: threading.Event,
                 timeout_s: float, plan: ContextPlan | None, on_active: Callable[[int], None] | None = None) -> None:
        self.loaded, self.prompt, self.params, self.stop = loaded, prompt, params, stop
        self.timeout_s, self.plan = timeout_s, plan
        self._on_active = on_active or (lambda _delta: None)
        self.stats: GenerationStats | None = None

    def __iter__(self) -> Iterator[str]:
        model: GGUFCausalLM = self.loaded.model
        start = time.perf_counter()
        self._on_active(1)
        try:
            if not model.lock.acquire(timeout=self.timeout_s):
                raise GenerationError(f"The model was busy for {self.timeout_s:.0f} s; try again.")
            try:
                new, first = yield from self._generate(model, self.loaded.tokenizer)
            finally:
                model.lock.release()
        finally:
            self._on_active(-1)
        end = time.perf_counter()
        self.stats = GenerationStats(len(self.prompt), new, (first or end) - start, end - start, self.loaded.device,
                                     self.loaded.key.precision.value, self.stop.is_set())

    def _generate(self, model: GGUFCausalLM, tokenizer: Any) -> Iterator[str]:
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


def stream_gguf(loaded: LoadedModel, inputs: dict[str, Any], params: SamplingParams, stop: threading.Event,
                timeout_s: float, plan: ContextPlan | None) -> GGUFTextStream:
    """The answer to inputs' single (1, seq) prompt, streamed by llama.cpp."""
    return GGUFTextStream(loaded, [int(t) for t in inputs["input_ids"][0]], params, stop, timeout_s, plan)


def _sampling(params: SamplingParams) -> dict[str, Any]:
    """llama.cpp sampler settings equivalent to transformers' (min-p and typical-p off; top_k 0 = off in both).

    One difference remains: llama.cpp's repetition penalty looks at the last 64 tokens, transformers' at all.
    """
    return {"temp": params.temperature, "top_k": params.top_k if params.temperature else 1, "top_p": params.top_p,
            "min_p": 0.0, "typical_p": 1.0, "repeat_penalty": params.repetition_penalty}
