"""Tokens/s of the app's chat path (Service.stream: validation, template, batcher, Stop) vs raw generate.

Run: .venv/bin/python -m bench.chat_path [--model bundled/deepseek-v3-tiny] [--tokens 128] [--runs 5] [--threads N]
Prints both rates and their ratio, measured in this one run (goal: ratio >= 0.95). --threads sets torch's threads
(default: torch's own); on a shared, oversubscribed machine 1 thread keeps OpenMP barrier stalls out of the ratio.

Both paths (and the load) are called from a fresh thread each time, as a server's request thread calls them. A
thread that runs a parallel torch op keeps an OpenMP worker pool for life, and once a process holds more pool threads
than cores libgomp stops spinning between ops: calling raw generate from the main thread gave the main thread a pool
that slowed the app path's batcher thread (a server's request threads run no parallel op; its loads run on their
own short-lived thread). --caller main runs everything on the main thread instead, to show that effect.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from bench.threads import T, on_fresh_thread  # noqa: E402
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
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--caller", choices=("fresh", "main"), default="fresh",
                        help="call each path from a fresh thread (as a server does) or from the main thread")
    args = parser.parse_args()
    call: Callable[[Callable[[], T]], T] = on_fresh_thread if args.caller == "fresh" else lambda work: work()
    if args.threads:
        torch.set_num_threads(args.threads)
    registry = ModelRegistry(default_catalog(), detect_hardware())
    loaded = call(lambda: registry.get(args.model, args.precision))
    service = Service(registry, LimitsConfig())
    params = SamplingParams(max_new_tokens=args.tokens, temperature=0)
    rates: dict[str, list[float]] = {"app": [], "raw": []}
    paths = (("app", app_path), ("raw", raw_path))
    for _name, fn in paths:  # warm-up
        call(lambda fn=fn: fn(service, loaded, params))
    for _ in range(args.runs):  # interleaved so drift hits both paths alike
        for name, fn in paths:
            tokens, seconds = call(lambda fn=fn: fn(service, loaded, params))
            rates[name].append(tokens / seconds)
    app, raw = statistics.median(rates["app"]), statistics.median(rates["raw"])
    print(f"model {args.model} {args.precision} on {loaded.device}, {args.tokens} new tokens, "
          f"median of {args.runs} runs, {torch.get_num_threads()} threads, called from the {args.caller} thread")
    print(f"raw model.generate : {raw:8.1f} tok/s")
    print(f"app Service.stream : {app:8.1f} tok/s")
    print(f"ratio app/raw      : {app / raw:8.3f}  (goal >= 0.95); load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs (a shared machine: figures are noisy)")


if __name__ == "__main__":
    main()
