"""Tokens/s of the app's chat path (stream_chat: template, streamer thread, Stop criteria) vs raw generate.

Run: .venv/bin/python -m bench.chat_path [--model bundled/deepseek-v3-tiny] [--tokens 128] [--runs 5]
Prints both rates and their ratio, measured in this one run (goal: ratio >= 0.9).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from core.catalog import default_catalog  # noqa: E402
from core.generation import SamplingParams, stream_chat  # noqa: E402
from core.hardware import detect_hardware  # noqa: E402
from core.prompting import ChatRequest  # noqa: E402
from core.registry import ModelRegistry  # noqa: E402

PROMPT = "Explain what the with statement does and when to use it."


def app_path(loaded, params: SamplingParams) -> tuple[int, float]:
    start = time.perf_counter()
    stream = stream_chat(loaded, ChatRequest(PROMPT), params, threading.Event())
    for _ in stream:
        pass
    return stream.stats.new_tokens, time.perf_counter() - start


def raw_path(loaded, params: SamplingParams) -> tuple[int, float]:
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
    params = SamplingParams(max_new_tokens=args.tokens, temperature=0)
    rates: dict[str, list[float]] = {"app": [], "raw": []}
    app_path(loaded, params), raw_path(loaded, params)  # warm-up
    for _ in range(args.runs):  # interleaved so drift hits both paths alike
        for name, fn in (("app", app_path), ("raw", raw_path)):
            tokens, seconds = fn(loaded, params)
            rates[name].append(tokens / seconds)
    app, raw = statistics.median(rates["app"]), statistics.median(rates["raw"])
    print(f"model {args.model} {args.precision} on {loaded.device}, {args.tokens} new tokens, "
          f"median of {args.runs} runs, {torch.get_num_threads()} threads")
    print(f"raw model.generate : {raw:8.1f} tok/s")
    print(f"app stream_chat    : {app:8.1f} tok/s")
    print(f"ratio app/raw      : {app / raw:8.3f}  (goal >= 0.9)")


if __name__ == "__main__":
    main()
