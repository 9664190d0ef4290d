"""compare_precisions(): one prompt through several precisions of a model, measured side by side."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch

from core.errors import EmptyInputError, OutOfMemoryError, PlaygroundError, UnsupportedPrecisionError
from core.generation.prompting import ChatRequest
from core.generation.sampling import SamplingParams
from core.generation.stream import prepare_chat, stream_chat
from core.models.hardware import Hardware, Precision, parse_precision
from core.models.loading import LoadedModel, ModelKey
from core.paths import REFERENCE_TEXT
from core.quant.backends import backend_name, bits_of, kernel_of, unavailable_reason
from core.quant.divergence import Divergence, divergence, reference_log_probs
from core.quant.gguf.files import gguf_file
from core.quant.gguf.loader import GGUF_TYPES
from core.quant.gguf.model import GGUFCausalLM
from core.quant.gguf.stream import stream_gguf
from core.quant.quality import greedy_agreement
from core.quant.stages import WatchedLoad
from core.quant.weights import weight_report

DEFAULT_PROMPT = "Explain what a Python list comprehension is."
QUALITY_WINDOW = 512  # tokens per scoring pass; the first half is context (llama-perplexity --kl-divergence)
PREFILL_PASSES = 3  # bare prefills timed to tell how noisy this run's timings are
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
    prefill_s: float = 0.0  # the prompt's forward pass inside the timed answer (its TTFT includes it)
    prefill_spread: float = 0.0  # (slowest - fastest) / fastest of PREFILL_PASSES bare prefills: timing noise
    ttft_s: float = 0.0
    tokens_per_s: float = 0.0  # decode rate after the first token
    new_tokens: int = 0
    perplexity: float = 0.0
    perplexity_change: float = 0.0  # relative to full precision, 0.02 = +2 %
    kl_mean: float = 0.0  # nats per token
    top1_agreement: float = 0.0
    greedy_agreement: float = 0.0
    quantized_share: float = 0.0  # of all weights
    quantized_ratio: float = 0.0  # all quantized weights' bytes / their full-precision bytes (8-bit head included)
    stored_as: tuple[str, ...] = ()  # each quantized part with its width, e.g. ("other linear layers int4", ...)
    full_precision_parts: tuple[str, ...] = ()
    unmeasured: tuple[str, ...] = ()  # table columns this row could not measure (e.g. memory of a remote server)
    note: str = ""  # what the row could not measure, or what llama.cpp quantized and how its memory adds up
    kernel: str = ""  # the kernel serving the quantized weights
    kernel_note: str = ""  # why the backend table chose it
    unfit_layers: int = 0  # linear layers the kernel could not take (shape), left unquantized
    quality: Divergence | None = None  # llama-perplexity --kl-divergence statistics vs the reference


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
    ref_step = _sub_progress(report, 0.0, 0.5 / (len(chosen) + 1), f"{full.label} reference")
    reference = _load(registry, model_id, full, ref_step)
    ref_ids = reference.tokenizer(REFERENCE_TEXT.read_text(encoding="utf-8"), return_tensors="pt").input_ids[0]
    with registry.hold(reference.key):  # the reference stays resident while the others load beside it
        ref_step(0.4, "scoring the reference text")
        ref_scores = reference_log_probs(reference.model, ref_ids, QUALITY_WINDOW, quality_tokens)
        ref_step(0.8, "answering the prompt")
        prompt_ids, ref_answer, _ = _answer(reference, prompt, params)
        answer_ids = reference.tokenizer.encode(ref_answer, add_special_tokens=False)
        results = []
        for i, precision in enumerate(chosen):
            step = _sub_progress(report, (i + 0.5) / (len(chosen) + 1), 0.5 / (len(chosen) + 1), precision.label)
            step(0.0, "measuring")
            results.append(_measure(registry, reference, precision, prompt, params, (ref_ids, ref_scores),
                                    prompt_ids, answer_ids, step))
    report(1.0, "Done")
    return ComparisonRun(reference.entry.model_id, prompt, params, full.value, registry.hardware.describe(),
                         sum(int(t.shape[0]) for t in ref_scores), tuple(results))


def _sub_progress(report: Progress, start: float, width: float, label: str) -> Progress:
    """A Progress for one step: its 0..1 maps onto start..start+width of the whole run."""
    return lambda fraction, message: report(start + width * fraction, f"{label}: {message}")


def _parse_all(precisions: list[str]) -> list[Precision]:
    if not precisions:
        raise UnsupportedPrecisionError("Tick at least one precision to compare.")
    return list(dict.fromkeys(parse_precision(p) for p in precisions))


def _measure(registry: ModelSource, reference: LoadedModel, precision: Precision, prompt: str,
             params: SamplingParams, scoring: tuple[torch.Tensor, list[torch.Tensor]], prompt_ids: list[int],
             answer_ids: list[int], progress: Progress) -> PrecisionResult:
    head = {"precision": precision.value, "label": precision.label, "backend": backend_name(precision),
            "bits": bits_of(precision)}
    try:
        if precision in GGUF_TYPES and not unavailable_reason(reference.entry, precision, registry.hardware):
            gguf_file(reference.entry, GGUF_TYPES[precision], progress)  # once, with progress; the load finds it
        loaded = _load(registry, reference.entry.model_id, precision, progress)
        progress(0.4, "warm-up")
        _answer(loaded, prompt, replace(params, max_new_tokens=2))  # warm-up: kernels compile on first use
        progress(0.45, "timing the prefill")
        prefill_s, spread = _time_prefill(loaded, prompt_ids)
        progress(0.5, "answering the prompt")
        with _first_forward(loaded) as answer_prefill:  # the prefill inside the answer whose TTFT is reported
            _, output, stats = _answer(loaded, prompt, params)
        prefill_s = answer_prefill[0] if answer_prefill else prefill_s  # llama.cpp's forward is not a torch call
        progress(0.65, "scoring quality against the reference")
        quality = divergence(scoring[1], loaded.model, scoring[0], QUALITY_WINDOW)
        progress(0.9, "greedy agreement")
        greedy = greedy_agreement(loaded.model, prompt_ids, answer_ids)
    except PlaygroundError as exc:
        return PrecisionResult(**head, error=str(exc))
    if isinstance(loaded.model, GGUFCausalLM):  # tensors inside a GGUF file, not torch modules: the note names
        weights, note, stored_as = loaded.model.weights, loaded.model.note(), ()  # each part's ggml type
    else:
        weights, note = weight_report(loaded.model, full_element_size=_element_size(reference)), ""
        stored_as = weights.stored_as()
    return PrecisionResult(
        **head, dtype=loaded.dtype, output=output, load_s=loaded.load_seconds, memory_bytes=loaded.memory_bytes,
        prefill_s=prefill_s, prefill_spread=spread,
        ttft_s=stats.ttft_s, tokens_per_s=stats.tokens_per_s, new_tokens=stats.new_tokens,
        perplexity=quality.perplexity, perplexity_change=quality.perplexity_ratio.value - 1.0,
        kl_mean=quality.kl_mean.value, top1_agreement=quality.same_top.value, greedy_agreement=greedy,
        quantized_share=weights.quantized_share, quantized_ratio=weights.quantized_ratio,
        stored_as=stored_as,
        full_precision_parts=weights.full_precision_parts, quality=quality, note=note, **_kernel_fields(loaded))


def _kernel_fields(loaded: LoadedModel) -> dict[str, object]:
    kernel = kernel_of(loaded.key.precision, loaded.device)
    note = kernel.reason if kernel else ""
    if loaded.unfit_layers:
        note += f"; {loaded.unfit_layers} layer(s) left unquantized (in_features not divisible by the group)"
    return {"kernel": loaded.kernel or (kernel.name if kernel else ""), "kernel_note": note,
            "unfit_layers": loaded.unfit_layers}


def _load(registry: ModelSource, model_id: str, precision: Precision, progress: Progress) -> LoadedModel:
    """The registry's model at precision (admitted by its one memory rule), reporting the load's stage and
    elapsed time every stages.LOAD_TICK_S; a refusal names the row."""
    load = WatchedLoad(lambda: registry.get(model_id, precision), "compare-load", stage="loading")
    for current, elapsed in load.ticks():
        progress(0.05, f"{current} ({elapsed:.0f} s)")
    try:
        return load.result()
    except OutOfMemoryError as exc:
        raise OutOfMemoryError(f"Not enough memory for {precision.label}. {exc}") from None


def _answer(loaded: LoadedModel, prompt: str, params: SamplingParams) -> tuple[list[int], str, object]:
    if isinstance(loaded.model, GGUFCausalLM):  # llama.cpp generates, not model.generate
        plan, inputs = prepare_chat(loaded, ChatRequest(prompt), params)
        stream: Any = stream_gguf(loaded, inputs, params, threading.Event(), 600.0, plan)
    else:
        stream = stream_chat(loaded, ChatRequest(prompt), params, threading.Event())
    text = "".join(stream)
    assert stream.plan is not None and stream.stats is not None
    return list(stream.plan.input_ids), text, stream.stats


@contextmanager
def _first_forward(loaded: LoadedModel) -> Iterator[list[float]]:
    """Seconds of the model's first forward call inside the block: the prefill of a prompt shorter than
    PREFILL_CHUNK, timed in the same generate() as its time to first token, so TTFT can never be below it."""
    seconds: list[float] = []
    began: list[float] = []
    if not isinstance(loaded.model, torch.nn.Module):
        yield seconds
        return

    def before(_module: Any, _args: Any) -> None:
        if not began:
            began.append(time.perf_counter())

    def after(_module: Any, _args: Any, _output: Any) -> None:
        if not seconds:
            if loaded.device == "cuda":
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - began[0])

    hooks = [loaded.model.register_forward_pre_hook(before), loaded.model.register_forward_hook(after)]
    try:
        yield seconds
    finally:
        for hook in hooks:
            hook.remove()


def _time_prefill(loaded: LoadedModel, prompt_ids: list[int]) -> tuple[float, float]:
    """(fastest, (slowest - fastest) / fastest) seconds of PREFILL_PASSES forward passes over the prompt."""
    ids = torch.tensor([prompt_ids], device=loaded.device)
    times = []
    with torch.inference_mode():
        for _ in range(PREFILL_PASSES):
            start = time.perf_counter()
            loaded.model(ids, use_cache=True, logits_to_keep=1)
            if loaded.device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return min(times), (max(times) - min(times)) / min(times)


def _element_size(reference: LoadedModel) -> int:
    return next(reference.model.parameters()).element_size()
