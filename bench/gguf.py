"""llama.cpp's GGUF rows beside ours at deepseek-coder-1.3b's width, through the app's own comparison.

Run: .venv/bin/python -m bench.gguf [--layers 6] [--tokens 32] [--precisions fp32 bf16 int8 int4 gguf-q8_0 ...]
Builds once (cached under PLAYGROUND_CACHE/bench) a Llama with deepseek-coder-1.3b's width (hidden 2048, MLP 5504,
16 heads, vocab 32256; fewer layers than its 24, random seeded weights, the bundled qwen2-tiny tokenizer padded to
the vocab), then runs compare_precisions on it: every row is measured by the same code (load, memory, prefill,
TTFT, decode tok/s; quality vs fp32 is meaningless on random weights and only shows the pipeline runs). Then, as
the machine may be shared, decode speed again through the app's chat path (Service.stream, greedy) in --rounds
rounds that visit every precision in turn, so a change in load hits all rows alike; the best round of each counts.
Every measured call runs on a thread of its own, as a server's request threads do (bench/threads.py says why).
Prints the table, each row's decode speed vs fp32, and our best CPU 4-bit decode vs llama.cpp Q4_0's (goal >= 0.5x).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: E402

from bench.threads import on_fresh_thread  # noqa: E402
from core.config import LimitsConfig  # noqa: E402
from core.generation.prompting import ChatRequest  # noqa: E402
from core.generation.sampling import SamplingParams  # noqa: E402
from core.models.catalog import BUNDLED, Catalog, CatalogEntry  # noqa: E402
from core.models.hardware import detect_hardware  # noqa: E402
from core.paths import cache_root  # noqa: E402
from core.quant.comparison import DEFAULT_PROMPT, ComparisonRun, compare_precisions  # noqa: E402
from core.quant.report import COLUMNS, table_rows  # noqa: E402
from core.serving.registry import ModelRegistry  # noqa: E402
from core.serving.service import Finished, Service  # noqa: E402

MODEL_ID = "bench/deepseek-coder-1.3b-width"
PRECISIONS = ("fp32", "bf16", "int8", "int4", "gguf-q8_0", "gguf-q4_0", "gguf-q4_k_m")
OURS_4BIT = ("int4", "gptq-int4")  # transformers-side 4-bit rows


def build_checkpoint(layers: int) -> Path:
    """A seeded random Llama at deepseek-coder-1.3b's width, saved once (about a minute on 2 cores)."""
    folder = cache_root() / "bench" / f"deepseek-coder-1.3b-width-{layers}l"
    if (folder / "model.safetensors").exists():
        return folder
    tokenizer_source = next(e.source for e in BUNDLED if e.model_id == "bundled/qwen2-tiny")
    config = LlamaConfig(hidden_size=2048, intermediate_size=5504, num_hidden_layers=layers,
                         num_attention_heads=16, num_key_value_heads=16, vocab_size=32256,
                         max_position_embeddings=16384, rms_norm_eps=1e-6, bos_token_id=0, eos_token_id=1,
                         tie_word_embeddings=False, rope_theta=100000.0)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(tokenizer_source).save_pretrained(tmp)
    tmp.rename(folder)
    return folder


def bench_registry(layers: int) -> ModelRegistry:
    """A registry whose catalog is this bench's model alone (built on first use), torch on at most 2 threads."""
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    entry = CatalogEntry(MODEL_ID, "llama", "text", str(build_checkpoint(layers)),
                         "random weights at deepseek-coder-1.3b width", 4096)
    return ModelRegistry(Catalog((entry,)), detect_hardware())


def print_run(run: ComparisonRun) -> None:
    print(f"\n## {run.model_id} on {run.hardware} ({run.quality_tokens} reference tokens)")
    print(" | ".join(COLUMNS))
    for row in table_rows(run):
        print(" | ".join("" if v is None else str(v) for v in row))


def interleaved_speeds(service: Service, precisions: list[str], tokens: int, rounds: int) -> dict[str, float]:
    """Best decode tok/s of each precision over rounds that visit every precision in turn (chat path, greedy)."""
    params = SamplingParams(max_new_tokens=tokens, temperature=0.0, seed=0)
    best: dict[str, float] = {}
    for _ in range(rounds):
        for precision in precisions:
            events = on_fresh_thread(lambda p=precision: list(service.stream(ChatRequest(DEFAULT_PROMPT), MODEL_ID, p,
                                                                             params)))
            speed = events[-1].stats.tokens_per_s if isinstance(events[-1], Finished) else 0.0
            best[precision] = max(best.get(precision, 0.0), speed)
    return best


def print_speeds(speed: dict[str, float], rounds: int) -> None:
    print(f"\ndecode tok/s, best of {rounds} interleaved rounds through Service.stream: " +
          ", ".join(f"{p} {v:.2f}" for p, v in speed.items()))
    if "fp32" in speed:
        print("decode tok/s vs fp32 (same run): " +
              ", ".join(f"{p} {v / speed['fp32']:.2f}x" for p, v in speed.items()))
    ours = max((speed[p], p) for p in OURS_4BIT if p in speed) if any(p in speed for p in OURS_4BIT) else None
    if ours and "gguf-q4_0" in speed:
        ratio = ours[0] / speed["gguf-q4_0"]
        verdict = "MEETS" if ratio >= 0.5 else "MISSES"
        print(f"our best CPU 4-bit ({ours[1]}, {ours[0]:.2f} tok/s) / llama.cpp Q4_0 ({speed['gguf-q4_0']:.2f} "
              f"tok/s) = {ratio:.2f}x decode · {verdict} the >= 0.5x goal")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per answer (greedy)")
    parser.add_argument("--quality-tokens", type=int, default=128)
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    registry = bench_registry(args.layers)
    params = SamplingParams(max_new_tokens=args.tokens, temperature=0.0, seed=0)
    run = on_fresh_thread(lambda: compare_precisions(  # loads included: no OpenMP pool outlives it (bench.threads)
        registry, MODEL_ID, args.precisions, DEFAULT_PROMPT, params,
        progress=lambda _f, message: print(f"  … {message}", flush=True), quality_tokens=args.quality_tokens))
    print_run(run)
    measured = [r.precision for r in run.results if not r.error]
    print_speeds(interleaved_speeds(Service(registry, LimitsConfig()), measured, args.tokens, args.rounds),
                 args.rounds)


if __name__ == "__main__":
    main()
