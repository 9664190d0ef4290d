"""The Quantization tab's full table for the bundled models, plus memory ratios vs full precision.

Run: .venv/bin/python -m bench.quantization [--models bundled/deepseek-v3-tiny ...] [--tokens 64]
Quality is scored on the whole of assets/text/reference.txt. Prints, measured in this one run:
int8/full and int4/full whole-model memory, the quantized weights' bytes vs their full-precision bytes
(goal <= 0.3x at 4-bit, MoE experts included), and perplexity change (goals: GPTQ 4-bit <= +5 %, 8-bit <= +1 %).
GPTQ checkpoints are cached under PLAYGROUND_CACHE: the first run calibrates (about 30 s per bit width here).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from core.generation.sampling import SamplingParams  # noqa: E402
from core.models.catalog import default_catalog  # noqa: E402
from core.models.hardware import detect_hardware  # noqa: E402
from core.quant.backends import available_precisions  # noqa: E402
from core.quant.comparison import DEFAULT_PROMPT, ComparisonRun, compare_precisions  # noqa: E402
from core.quant.report import COLUMNS, table_rows  # noqa: E402
from core.serving.registry import ModelRegistry  # noqa: E402

MODELS = ("bundled/deepseek-v3-tiny", "bundled/qwen2-tiny")
GOALS = {4: 0.05, 8: 0.01}  # perplexity change allowed per bit width


def print_table(run: ComparisonRun) -> None:
    print(f"\n## {run.model_id} on {run.hardware} ({run.quality_tokens} reference tokens, prompt {run.prompt!r})")
    print(" | ".join(COLUMNS))
    for row in table_rows(run):
        print(" | ".join("" if v is None else str(v) for v in row))


def print_ratios(run: ComparisonRun) -> None:
    by = {r.precision: r for r in run.results if not r.error}
    full = by[run.reference_precision]
    for r in by.values():
        if r is full:
            continue
        line = f"  {r.precision:10s} memory {r.memory_bytes / full.memory_bytes:.3f}x full"
        if r.quantized_ratio:
            stored = f"stored as: {', '.join(r.stored_as)}; " if r.stored_as else ""  # GGUF: the table's note
            line += (f" · quantized weights {r.quantized_ratio:.3f}x their {run.reference_precision} bytes"
                     f" ({100 * r.quantized_share:.1f} % of all weights; {stored}kept unquantized in {r.dtype}: "
                     f"{', '.join(r.full_precision_parts)})")
        goal = GOALS.get(r.bits) if r.precision.startswith("gptq") else None
        verdict = "" if goal is None else (" · MEETS" if r.perplexity_change <= goal else " · MISSES") + \
            f" the +{100 * goal:.0f} % goal"
        print(f"{line} · perplexity {100 * r.perplexity_change:+.2f} %{verdict}")
    for r in run.results:
        if r.error:
            print(f"  {r.precision:10s} not measured: {r.error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--tokens", type=int, default=48, help="new tokens per answer (greedy)")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    registry = ModelRegistry(default_catalog(), detect_hardware())
    params = SamplingParams(max_new_tokens=args.tokens, temperature=0.0, seed=0)
    for model_id in args.models:
        precisions = [p.value for p in available_precisions(registry.catalog.get(model_id), registry.hardware)]
        run = compare_precisions(registry, model_id, precisions, DEFAULT_PROMPT, params,
                                 progress=lambda _f, message: print(f"  … {message}", flush=True),
                                 quality_tokens=1_000_000)
        print_table(run)
        print_ratios(run)
        for loaded in registry.resident():
            registry.unload(loaded.key)


if __name__ == "__main__":
    main()
