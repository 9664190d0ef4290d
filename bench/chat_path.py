"""Tokens/s of the app's chat path (Service.stream: validation, template, batcher, Stop) vs raw generate.

Run: .venv/bin/python -m bench.chat_path [--model bundled/deepseek-v3-tiny] [--tokens 128] [--runs 5]
Prints both rates and their ratio, measured in this one run (goal: ratio >= 0.9).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from core.config import LimitsConfig  # noqa: E402
from core.generation.prompting import ChatRequest  # noqa: E402
from core.generation.sampling import SamplingParams  # noqa: E402
from core.models.catalog import default_catalog  # noqa: E402
from core.models.hardware import detect_hardware  # noqa: E402
from core.serving.registry import ModelRegistry  # noqa: E402
from core.serving.service import Finished, Service  # noqa: E402

PROMPT = "Explain what the with statement does and when to use it."


def app_path(service: Service, loaded, params: SamplingParams) -> tuple[int, float]:
    """What every front end runs: Service.stream (validation, routing, the batcher, typed events)."""
    start = time.perf_counter()
    events = list(service.stream(ChatRequest(PROMPT), loaded.key.model_id, loaded.key.precision, params))
    finished = events[-1]
    assert isinstance(finished, Finished)
    return finished.stats.new_tokens, time.perf_counter() - start


def raw_path(_service: Service, loaded, params: SamplingParams) -> tuple[int, float]:
    start = time.perf_counter()
    text = loaded.tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=False,
                                                add_generation_prompt=True)
    ids = loaded.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = loaded.model.generate(ids, attention_mask=torch.ones_like(ids), **params.generate_kwargs(),
                                    pad_token_id=loaded.tokenizer.eos_token_id)
    loaded.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    return out.shape[1] - ids.shape[1], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="bundled/deepseek-v3-tiny")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    registry = ModelRegistry(default_catalog(), detect_hardware())
    loaded = registry.get(args.model, args.precision)
    service = Service(registry, LimitsConfig())
    params = SamplingParams(max_new_tokens=args.tokens, temperature=0)
    rates: dict[str, list[float]] = {"app": [], "raw": []}
    app_path(service, loaded, params), raw_path(service, loaded, params)  # warm-up
    for _ in range(args.runs):  # interleaved so drift hits both paths alike
        for name, fn in (("app", app_path), ("raw", raw_path)):
            tokens, seconds = fn(service, loaded, params)
            rates[name].append(tokens / seconds)
    app, raw = statistics.median(rates["app"]), statistics.median(rates["raw"])
    print(f"model {args.model} {args.precision} on {loaded.device}, {args.tokens} new tokens, "
          f"median of {args.runs} runs, {torch.get_num_threads()} threads")
    print(f"raw model.generate : {raw:8.1f} tok/s")
    print(f"app Service.stream : {app:8.1f} tok/s")
    print(f"ratio app/raw      : {app / raw:8.3f}  (goal >= 0.9)")


if __name__ == "__main__":
    main()
