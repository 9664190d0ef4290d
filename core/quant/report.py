"""A comparison run as table rows, JSON and Markdown (what the Quantization tab shows and exports)."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from importlib import metadata
from typing import Any

from core.models.memory import format_bytes
from core.quant.comparison import ComparisonRun, PrecisionResult

PACKAGES = ("torch", "transformers", "optimum-quanto", "torchao", "gptqmodel", "optimum", "bitsandbytes",
            "llama-cpp-python")
COLUMNS = ("precision", "backend", "kernel", "bits", "load s", "memory MB", "quantized share",
           "quantized bytes ratio", "prefill s", "TTFT s", "decode tok/s", "perplexity", "ppl change %", "± ppl %",
           "mean KL", "± KL", "KL p99", "KL max", "top-1 agree", "± top-1", "Δp RMS", "greedy agree",
           "quantized as", "kept unquantized", "note")
NOISE_NOTE = "perplexity change within noise (under 2 standard errors)"


def table_rows(run: ComparisonRun) -> list[list[Any]]:
    """One row per precision, in COLUMNS order; a row that could not be measured says why."""
    return [_row(r, r.precision == run.reference_precision) for r in run.results]


def _row(r: PrecisionResult, reference: bool) -> list[Any]:
    if r.error:
        return [r.label, r.backend, r.kernel or None, r.bits, *([None] * (len(COLUMNS) - 5)), r.error]
    values = [r.label, r.backend, r.kernel, r.bits, round(r.load_s, 2), round(r.memory_bytes / 2**20, 3),
              round(r.quantized_share, 3), round(r.quantized_ratio, 3), round(r.prefill_s, 4), round(r.ttft_s, 3),
              round(r.tokens_per_s, 1), round(r.perplexity, 3), round(100 * r.perplexity_change, 2),
              *_quality_cells(r), round(r.greedy_agreement, 4),
              ", ".join(r.stored_as), f"{', '.join(r.full_precision_parts)} ({r.dtype})", _note(r, reference)]
    return [None if column in r.unmeasured else value for column, value in zip(COLUMNS, values, strict=True)]


def _quality_cells(r: PrecisionResult) -> list[Any]:
    """± ppl %, mean KL, ± KL, KL p99, KL max, top-1 agree, ± top-1, Δp RMS."""
    q = r.quality
    if q is None:
        return [None, round(r.kl_mean, 5), None, None, None, round(r.top1_agreement, 4), None, None]
    return [round(100 * q.perplexity_ratio.error, 2), round(q.kl_mean.value, 5), _sig(q.kl_mean.error),
            _sig(q.kl_quantiles["p99"]), _sig(q.kl_quantiles["max"]), round(q.same_top.value, 4),
            round(q.same_top.error, 4), _sig(q.delta_p_rms.value)]


def _note(r: PrecisionResult, reference: bool) -> str:
    notes = [n for n in (r.note, r.kernel_note) if n]
    if not reference and r.quality is not None and r.quality.perplexity_within_noise:
        notes.append(NOISE_NOTE)
    return "; ".join(notes)


def _sig(x: float) -> float:
    """Three significant digits (KL values span 1e-7 .. 1)."""
    return float(f"{x:.3g}")


def versions() -> dict[str, str]:
    """Installed versions of the packages that shape the numbers."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def to_json(run: ComparisonRun) -> str:
    """The whole run: prompt, settings, seed, hardware, versions, outputs, measurements."""
    return json.dumps({**asdict(run), "versions": versions(), "columns": list(COLUMNS),
                       "table": table_rows(run)}, indent=2)


def to_markdown(run: ComparisonRun) -> str:
    """A human-readable report of the run: settings, the table, then each output."""
    lines = [f"# Quantization comparison: {run.model_id}", "",
             f"- Hardware: {run.hardware}; reference: {run.reference_precision}",
             f"- Prompt: {run.prompt!r}",
             f"- Settings: {asdict(run.params)}",
             f"- Quality measured on {run.quality_tokens} tokens of assets/text/reference.txt, each with at least "
             "half a 512-token window of context; ± is one standard error",
             f"- Versions: {', '.join(f'{k} {v}' for k, v in versions().items())}", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in table_rows(run)]
    for r in run.results:
        memory = f" · {format_bytes(r.memory_bytes)}" if not r.error else ""
        lines += ["", f"## {r.label}{memory}", "", r.error or r.output or "(empty answer)"]
    return "\n".join(lines) + "\n"
