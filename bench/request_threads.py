"""Chat decode speed before and after a comparison, both called from one long-lived request thread (as a server's).

Run: flock /tmp/bigmem.lock .venv/bin/python -m bench.request_threads [--layers 6] [--tokens 32] [--rounds 3]
A comparison that runs its torch work on the request thread itself leaves that thread an OpenMP pool for life; with
more pool threads than cores libgomp stops spinning between ops, and every later answer decodes slower. Service.compare
runs that work on a thread of its own (core/serving/own_thread.py). This bench measures, on bench.gguf's Llama at
deepseek-coder-1.3b's width (fp32 and int4 resident), greedy chat decode tok/s through Service.stream from one
request thread: first fresh, then after compare_precisions run on that thread (how comparisons ran before), then,
that thread ended, on a second request thread after Service.compare.
Prints the best of --rounds for each and the ratios.
"""

from __future__ import annotations

import argparse
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from bench.gguf import MODEL_ID, bench_registry  # noqa: E402
from bench.threads import on_fresh_thread  # noqa: E402
from core.config import LimitsConfig  # noqa: E402
from core.generation.prompting import ChatRequest  # noqa: E402
from core.generation.sampling import SamplingParams  # noqa: E402
from core.quant.comparison import DEFAULT_PROMPT, compare_precisions  # noqa: E402
from core.serving.service import Finished, Service  # noqa: E402

PRECISION = "int4"


class RequestThread:
    """One long-lived thread that runs what it is given, like a server's request thread."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[Callable[[], Any] | None] = queue.Queue()
        self.results: queue.Queue[Any] = queue.Queue()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while (job := self.jobs.get()) is not None:
            self.results.put(job())

    def call(self, job: Callable[[], Any]) -> Any:
        self.jobs.put(job)
        return self.results.get()

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join()


def best_decode(thread: RequestThread, service: Service, tokens: int, rounds: int) -> float:
    """Best decode tok/s of `rounds` greedy answers, each asked from `thread`."""
    params = SamplingParams(max_new_tokens=tokens, temperature=0.0, seed=0)

    def answer() -> float:
        events = list(service.stream(ChatRequest(DEFAULT_PROMPT), MODEL_ID, PRECISION, params))
        return events[-1].stats.tokens_per_s if isinstance(events[-1], Finished) else 0.0

    return max(thread.call(answer) for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    registry = bench_registry(args.layers)
    service = Service(registry, LimitsConfig())
    for precision in ("fp32", PRECISION):
        on_fresh_thread(lambda p=precision: registry.get(MODEL_ID, p))  # resident before any timing
    params = SamplingParams(max_new_tokens=8, temperature=0.0, seed=0)
    old = RequestThread()
    fresh = best_decode(old, service, args.tokens, args.rounds)
    old.call(lambda: compare_precisions(registry, MODEL_ID, [PRECISION], DEFAULT_PROMPT, params, quality_tokens=64))
    after_old = best_decode(old, service, args.tokens, args.rounds)
    old.close()  # its pool ends with it
    new = RequestThread()
    new.call(lambda: service.compare(MODEL_ID, [PRECISION], DEFAULT_PROMPT, params))
    after_new = best_decode(new, service, args.tokens, args.rounds)
    new.close()
    print(f"{MODEL_ID} ({args.layers} layers) {PRECISION}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"decode tok/s through Service.stream, best of {args.rounds}:")
    print(f"  fresh request thread                              : {fresh:6.2f}")
    print(f"  after a comparison on that thread (as before)     : {after_old:6.2f}  ({after_old / fresh:.2f}x)")
    print(f"  after Service.compare from a request thread (now) : {after_new:6.2f}  ({after_new / fresh:.2f}x)")


if __name__ == "__main__":
    main()
