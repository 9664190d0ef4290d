"""N users on a remote engine through the Playground vs the same users directly on the engine, in one run.

Run: .venv/bin/python -m bench.remote [--users 1 8] [--tokens 64] [--rounds 3] [--no-app]
The engine is `transformers serve` over the bundled qwen2 checkpoint on a loopback port (continuous batching off).
Each round runs, for every N, the same N prompts (greedy, fixed max new tokens) three ways, interleaved so the
shared machine's noise hits them alike:
  direct     the `openai` SDK streaming straight from the engine (the baseline),
  service    the Playground's Service.stream in this process (its remote client: httpx, SSE parsing, events),
  app /chat  the Playground app (app.py with the engine in its config) through gradio_client, the whole HTTP path.
Prints per way and N the median over rounds of aggregate tokens/s (engine-counted tokens / wall time) and p50 time
to first token, then the ratios against direct at 8 users (goals: <= 10 % added TTFT, >= 0.9x tokens/s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client  # noqa: E402
from openai import OpenAI  # noqa: E402

from core.config import LimitsConfig, RemoteModelConfig  # noqa: E402
from core.generation.prompting import ChatRequest  # noqa: E402
from core.generation.sampling import SamplingParams  # noqa: E402
from core.models.catalog import default_catalog  # noqa: E402
from core.models.hardware import detect_hardware  # noqa: E402
from core.paths import ASSETS  # noqa: E402
from core.serving.registry import ModelRegistry  # noqa: E402
from core.serving.remotes import build_hub  # noqa: E402
from core.serving.service import Finished, Service, TextDelta  # noqa: E402
from tests.remote_servers import free_port, transformers_serve, wait_ready  # noqa: E402

CHECKPOINT = ASSETS / "models" / "qwen2-tiny"
REMOTE_ID = "remote/qwen2-tiny"
PROMPTS = ["Explain the while statement.", "What does the for statement do?", "How do I define a class?",
           "What is a list comprehension?", "Explain the try statement.", "What does import do?",
           "How are dictionaries used?", "What is a generator?"]
User = Callable[[str], tuple[float, int]]  # prompt -> (time to first text, tokens)


def direct_user(url: str, tokens: int) -> User:
    client = OpenAI(base_url=url, api_key="none", max_retries=0)

    def user(prompt: str) -> tuple[float, int]:
        start, first, count = time.perf_counter(), None, 0
        stream = client.chat.completions.create(model=str(CHECKPOINT), stream=True, max_tokens=tokens,
                                                temperature=0.0, top_p=1.0,
                                                messages=[{"role": "user", "content": prompt}])
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and first is None:
                first = time.perf_counter()
            if chunk.usage is not None:
                count = chunk.usage.completion_tokens
        return (first or time.perf_counter()) - start, count

    return user


def service_user(service: Service, tokens: int) -> User:
    params = SamplingParams(max_new_tokens=tokens, temperature=0.0)

    def user(prompt: str) -> tuple[float, int]:
        start, first, count = time.perf_counter(), None, 0
        for event in service.stream(ChatRequest(prompt), REMOTE_ID, "remote", params):
            if isinstance(event, TextDelta) and first is None:
                first = time.perf_counter()
            if isinstance(event, Finished):
                count = event.stats.new_tokens
        return (first or time.perf_counter()) - start, count

    return user


def app_user(url: str, tokens: int, service: Service) -> User:
    """/chat returns text; its tokens are counted as the engine counted the same greedy answer (service path)."""
    clients: list[Client] = []
    lock = threading.Lock()

    def user(prompt: str) -> tuple[float, int]:
        with lock:
            client = clients.pop() if clients else Client(url, verbose=False)
        start, first = time.perf_counter(), None
        for partial in client.submit(prompt, model=REMOTE_ID, max_new_tokens=tokens, api_name="/chat"):
            if partial and first is None:
                first = time.perf_counter()
        with lock:
            clients.append(client)
        return (first or time.perf_counter()) - start, tokens

    return user


def run_level(user: User, n: int) -> tuple[float, float]:
    """n users at once: (aggregate tokens/s, p50 time to first text)."""
    results: list[tuple[float, int]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        result = user(PROMPTS[i % len(PROMPTS)])
        with lock:
            results.append(result)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return sum(tokens for _, tokens in results) / wall, statistics.median(ttft for ttft, _ in results)


def start_app(engine: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """app.py with the engine as a configured remote model, on a loopback port."""
    config = log.with_suffix(".yaml")
    config.write_text(f"models:\n  remote:\n    - id: {REMOTE_ID}\n      base_url: {engine}\n"
                      f"      model: {CHECKPOINT}\n      max_concurrency: 16\n", encoding="utf-8")
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--config", str(config), "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    wait_ready(f"http://127.0.0.1:{port}/config", proc, 240)
    return proc, f"http://127.0.0.1:{port}/"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-app", action="store_true", help="skip the app /chat path (the slowest to start)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    with transformers_serve(CHECKPOINT, tmp / "serve.log") as engine:
        hub = build_hub([RemoteModelConfig(REMOTE_ID, engine, str(CHECKPOINT), max_concurrency=16)])
        service = Service(ModelRegistry(default_catalog(), detect_hardware()), LimitsConfig(), remotes=hub)
        ways: dict[str, User] = {"direct": direct_user(engine, args.tokens),
                                 "service": service_user(service, args.tokens)}
        app = None
        if not args.no_app:
            app, url = start_app(engine, tmp / "app.log")
            ways["app /chat"] = app_user(url, args.tokens, service)
        try:
            measure(ways, args)
        finally:
            if app is not None:
                app.terminate()
                app.wait(30)
            hub.close()


def measure(ways: dict[str, User], args: argparse.Namespace) -> None:
    for user in ways.values():  # warm-up: loads the engine's model, opens connections
        run_level(user, 2)
    samples: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for n in args.users:
            for name, user in ways.items():
                samples.setdefault((name, n), []).append(run_level(user, n))
    print(f"transformers serve over bundled qwen2-tiny (CPU, continuous batching off), greedy, {args.tokens} new "
          f"tokens, median of {args.rounds} interleaved rounds. Shared 2-core machine: figures are noisy.")
    print(f"{'way':>10} {'users':>5} {'tok/s':>8} {'ttft p50':>9}")
    medians = {}
    for (name, n), values in samples.items():
        medians[(name, n)] = (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values))
        print(f"{name:>10} {n:>5} {medians[(name, n)][0]:8.1f} {medians[(name, n)][1] * 1000:7.0f}ms")
    n = 8 if 8 in args.users else max(args.users)
    base_rate, base_ttft = medians[("direct", n)]
    for name in ways:
        if name == "direct":
            continue
        rate, ttft = medians[(name, n)]
        print(f"{name} vs direct at {n} users: TTFT {100 * (ttft / base_ttft - 1):+.1f} % (goal <= +10 %), "
              f"tok/s {rate / base_rate:.2f}x (goal >= 0.9x)")


if __name__ == "__main__":
    main()
