"""compare_precisions(): one prompt through several precisions of a model, measured side by side."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Protocol

import torch

from core.errors import EmptyInputError, OutOfMemoryError, PlaygroundError, UnsupportedPrecisionError
from core.generation.prompting import ChatRequest
from core.generation.sampling import SamplingParams
from core.generation.stream import stream_chat
from core.models.hardware import Hardware, Precision, parse_precision
from core.models.loading import LoadedModel, ModelKey
from core.paths import REFERENCE_TEXT
from core.quant.backends import backend_name, bits_of
from core.quant.quality import compare_logits, greedy_agreement
from core.quant.weights import weight_report

DEFAULT_PROMPT = "Explain what a Python list comprehension is."
Progress = Callable[[float, str], None]  # (fraction done 0..1, what is happening)


class ModelSource(Protocol):
    """Where the comparison gets its models: the app's ModelRegistry (shared, admitted under the memory budget)."""

    hardware: Hardware

    def get(self, model_id: str, precision: Precision | str) -> LoadedModel: ...

    def hold(self, key: ModelKey) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class PrecisionResult:
    precision: str
    label: str
    backend: str
    bits: int
    dtype: str = ""  # of the tensors left unquantized
    output: str = ""
    error: str | None = None  # why this row has no measurements
    load_s: float = 0.0
    memory_bytes: int = 0  # real tensor storage of the resident model
    prefill_s: float = 0.0  # one forward pass over the prompt
    ttft_s: float = 0.0
    tokens_per_s: float = 0.0  # decode rate after the first token
    new_tokens: int = 0
    perplexity: float = 0.0
    perplexity_change: float = 0.0  # relative to full precision, 0.02 = +2 %
    kl_mean: float = 0.0  # nats per token
    top1_agreement: float = 0.0
    greedy_agreement: float = 0.0
    quantized_share: float = 0.0  # of all weights
    quantized_ratio: float = 0.0  # quantized weights' bytes / their full-precision bytes
    full_precision_parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComparisonRun:
    model_id: str
    prompt: str
    params: SamplingParams
    reference_precision: str
    hardware: str
    quality_tokens: int  # tokens of the reference text scored
    results: tuple[PrecisionResult, ...]
    created: float = field(default_factory=time.time)


def compare_precisions(registry: ModelSource, model_id: str, precisions: list[str], prompt: str,
                       params: SamplingParams, progress: Progress | None = None,
                       quality_tokens: int = 512) -> ComparisonRun:
    """Load each precision once (shared registry), answer prompt, and score quality vs full precision."""
    chosen = _parse_all(precisions)
    if not prompt.strip():
        raise EmptyInputError("Type a prompt to compare the precisions on.")
    report = progress or (lambda _f, _m: None)
    full = registry.hardware.full_precision
    report(0.0, f"Loading the full-precision reference ({full.value})")
    reference = registry.get(model_id, full)
    ref_ids = reference.tokenizer(REFERENCE_TEXT.read_text(encoding="utf-8"), return_tensors="pt").input_ids[0]
    ref_ids = ref_ids[:quality_tokens]
    with registry.hold(reference.key):  # the reference stays resident while the others load beside it
        prompt_ids, ref_answer, _ = _answer(reference, prompt, params)
        answer_ids = reference.tokenizer.encode(ref_answer, add_special_tokens=False)
        results = []
        for i, precision in enumerate(chosen):
            report((i + 0.5) / (len(chosen) + 1), f"Measuring {precision.label}")
            results.append(_measure(registry, reference, precision, prompt, params, ref_ids, prompt_ids, answer_ids))
    report(1.0, "Done")
    return ComparisonRun(reference.entry.model_id, prompt, params, full.value, registry.hardware.describe(),
                         int(ref_ids.numel()), tuple(results))


def _parse_all(precisions: list[str]) -> list[Precision]:
    if not precisions:
        raise UnsupportedPrecisionError("Tick at least one precision to compare.")
    return list(dict.fromkeys(parse_precision(p) for p in precisions))


def _measure(registry: ModelSource, reference: LoadedModel, precision: Precision, prompt: str,
             params: SamplingParams, ref_ids: torch.Tensor, prompt_ids: list[int],
             answer_ids: list[int]) -> PrecisionResult:
    head = {"precision": precision.value, "label": precision.label, "backend": backend_name(precision),
            "bits": bits_of(precision)}
    try:
        loaded = _load(registry, reference.entry.model_id, precision)
        _answer(loaded, prompt, replace(params, max_new_tokens=2))  # warm-up: kernels compile on first use
        prefill_s = _time_prefill(loaded, prompt_ids)
        _, output, stats = _answer(loaded, prompt, params)
        agreement = compare_logits(reference.model, loaded.model, ref_ids)
        greedy = greedy_agreement(loaded.model, prompt_ids, answer_ids)
    except PlaygroundError as exc:
        return PrecisionResult(**head, error=str(exc))
    weights = weight_report(loaded.model, full_element_size=_element_size(reference))
    return PrecisionResult(
        **head, dtype=loaded.dtype, output=output, load_s=loaded.load_seconds, memory_bytes=loaded.memory_bytes,
        prefill_s=prefill_s,
        ttft_s=stats.ttft_s, tokens_per_s=stats.tokens_per_s, new_tokens=stats.new_tokens,
        perplexity=agreement.perplexity, perplexity_change=agreement.perplexity_change, kl_mean=agreement.kl_mean,
        top1_agreement=agreement.top1_agreement, greedy_agreement=greedy, quantized_share=weights.quantized_share,
        quantized_ratio=weights.quantized_ratio, full_precision_parts=weights.full_precision_parts)


def _load(registry: ModelSource, model_id: str, precision: Precision) -> LoadedModel:
    """The registry's model at precision, admitted by the registry's one memory rule; a refusal names the row."""
    try:
        return registry.get(model_id, precision)
    except OutOfMemoryError as exc:
        raise OutOfMemoryError(f"Not enough memory for {precision.label}. {exc}") from None


def _answer(loaded: LoadedModel, prompt: str, params: SamplingParams) -> tuple[list[int], str, object]:
    stream = stream_chat(loaded, ChatRequest(prompt), params, threading.Event())
    text = "".join(stream)
    assert stream.plan is not None and stream.stats is not None
    return list(stream.plan.input_ids), text, stream.stats


def _time_prefill(loaded: LoadedModel, prompt_ids: list[int]) -> float:
    ids = torch.tensor([prompt_ids], device=loaded.device)
    with torch.inference_mode():
        start = time.perf_counter()
        loaded.model(ids, use_cache=True, logits_to_keep=1)
        if loaded.device == "cuda":
            torch.cuda.synchronize()
    return time.perf_counter() - start


def _element_size(reference: LoadedModel) -> int:
    return next(reference.model.parameters()).element_size()
