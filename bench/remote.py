"""N users on a remote engine through the Playground vs the same users directly on the engine, in one run.

Run: .venv/bin/python -m bench.remote [--users 1 8] [--tokens 64] [--rounds 7] [--no-app]
The engine is `transformers serve` over the bundled qwen2 checkpoint on a loopback port (continuous batching off).
Then the same against an instant server (the tests' fault server answering five words at once, no model behind
it), which leaves only the clients' own cost: what the Playground adds, without the engine's noise.
Each round runs, for every N, the same N prompts (greedy, fixed max new tokens) three ways, interleaved so the
shared machine's noise hits them alike:
  direct     the `openai` SDK streaming straight from the engine (the baseline),
  service    the Playground's Service.stream in this process (its remote client: httpx, SSE parsing, events),
  app /chat  the Playground app (app.py with the engine in its config) through gradio_client, the whole HTTP path.
Prints per way and N the median over rounds of aggregate tokens/s (engine-counted tokens / wall time) and p50 time
to first token, then the median (and range) of the per-round ratios against direct at 8 users (goals: <= 10 %
added TTFT, >= 0.9x tokens/s). The order of the ways rotates each round.
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
from tests.remote_servers import WORDS, fault_server, free_port, transformers_serve, wait_ready  # noqa: E402

CHECKPOINT = ASSETS / "models" / "qwen2-tiny"
REMOTE_ID = "remote/qwen2-tiny"
INSTANT_ID = "remote/instant"  # the test fault server's "ok" model: five words at once, no model behind it
TITLES = {REMOTE_ID: "Engine: transformers serve over bundled qwen2-tiny (CPU, continuous batching off)",
          INSTANT_ID: "Instant server (tests/remote_servers.py, no model): the clients' own cost, engine noise removed"}
PROMPTS = ["Explain the while statement.", "What does the for statement do?", "How do I define a class?",
           "What is a list comprehension?", "Explain the try statement.", "What does import do?",
           "How are dictionaries used?", "What is a generator?"]
User = Callable[[str], tuple[float, int]]  # prompt -> (time to first text, tokens)


def direct_user(url: str, model: str, tokens: int) -> User:
    client = OpenAI(base_url=url, api_key="none", max_retries=0)

    def user(prompt: str) -> tuple[float, int]:
        start, first, count = time.perf_counter(), None, 0
        stream = client.chat.completions.create(model=model, stream=True, max_tokens=tokens,
                                                temperature=0.0, top_p=1.0,
                                                messages=[{"role": "user", "content": prompt}])
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and first is None:
                first = time.perf_counter()
            if chunk.usage is not None:
                count = chunk.usage.completion_tokens
        return (first or time.perf_counter()) - start, count

    return user


def service_user(service: Service, remote_id: str, tokens: int) -> User:
    params = SamplingParams(max_new_tokens=tokens, temperature=0.0)

    def user(prompt: str) -> tuple[float, int]:
        start, first, count = time.perf_counter(), None, 0
        for event in service.stream(ChatRequest(prompt), remote_id, "remote", params):
            if isinstance(event, TextDelta) and first is None:
                first = time.perf_counter()
            if isinstance(event, Finished):
                count = event.stats.new_tokens
        return (first or time.perf_counter()) - start, count

    return user


def app_user(url: str, remote_id: str, tokens: int) -> User:
    """/chat returns text, not a count: the tokens are taken as max new tokens (the engine's greedy answers here
    never stop early, as the direct and service counts show)."""
    clients: list[Client] = []
    lock = threading.Lock()

    def user(prompt: str) -> tuple[float, int]:
        with lock:
            client = clients.pop() if clients else Client(url, verbose=False)
        start, first = time.perf_counter(), None
        for partial in client.submit(prompt, model=remote_id, max_new_tokens=tokens, api_name="/chat"):
            if partial and first is None:
                first = time.perf_counter()
        with lock:
            clients.append(client)
        return (first or time.perf_counter()) - start, tokens

    return user


def run_level(user: User, n: int, repeat: int = 1) -> tuple[float, float]:
    """n users at once, each sending `repeat` requests in turn: (aggregate tokens/s, p50 time to first text)."""
    results: list[tuple[float, int]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        for _ in range(repeat):
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


def start_app(remotes: list[RemoteModelConfig], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """app.py with these remote models in its config file, on a loopback port."""
    config = log.with_suffix(".yaml")
    config.write_text("models:\n  remote:\n" + "".join(
        f"    - id: {r.id}\n      base_url: {r.base_url}\n      model: {r.model}\n      max_concurrency: 16\n"
        for r in remotes), encoding="utf-8")
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
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-app", action="store_true", help="skip the app /chat path (the slowest to start)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    with fault_server() as instant, transformers_serve(CHECKPOINT, tmp / "serve.log") as engine:
        remotes = [RemoteModelConfig(REMOTE_ID, engine, str(CHECKPOINT), max_concurrency=16),
                   RemoteModelConfig(INSTANT_ID, instant.url, "ok", max_concurrency=16)]
        hub = build_hub(remotes)
        service = Service(ModelRegistry(default_catalog(), detect_hardware()), LimitsConfig(), remotes=hub)
        app, url = start_app(remotes, tmp / "app.log") if not args.no_app else (None, "")
        try:
            for remote in remotes:
                tokens = args.tokens if remote.id == REMOTE_ID else len(WORDS)
                ways: dict[str, User] = {"direct": direct_user(remote.base_url, remote.model, tokens),
                                         "service": service_user(service, remote.id, tokens)}
                if app is not None:
                    ways["app /chat"] = app_user(url, remote.id, tokens)
                print(f"\n{TITLES[remote.id]}, greedy, {tokens} new tokens.")
                measure(ways, args, repeat=1 if remote.id == REMOTE_ID else 10)
        finally:
            if app is not None:
                app.terminate()
                app.wait(30)
            hub.close()


def measure(ways: dict[str, User], args: argparse.Namespace, repeat: int) -> None:
    for user in ways.values():  # warm-up: loads the engine's model, opens connections
        run_level(user, 2)
    names = list(ways)
    samples: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # rotated, so no way always follows another
        for n in args.users:
            for name in order:
                samples.setdefault((name, n), []).append(run_level(ways[name], n, repeat))
    print(f"{args.rounds} rounds (order rotated), {repeat} request(s) per user per round. Shared 2-core machine: "
          "figures are noisy.")
    print(f"{'way':>10} {'users':>5} {'tok/s':>8} {'ttft p50':>9}   (medians over rounds)")
    for (name, n), values in sorted(samples.items(), key=lambda kv: (kv[0][1], names.index(kv[0][0]))):
        rate, ttft = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
        print(f"{name:>10} {n:>5} {rate:8.1f} {ttft * 1000:7.0f}ms")
    n = 8 if 8 in args.users else max(args.users)
    for name in names[1:]:
        pairs = list(zip(samples[(name, n)], samples[("direct", n)], strict=True))
        rate = sorted(a[0] / b[0] for a, b in pairs)
        ttft = sorted(a[1] / b[1] - 1 for a, b in pairs)
        print(f"{name} vs direct at {n} users, median of per-round ratios [min, max]: "
              f"TTFT {100 * statistics.median(ttft):+.0f} % [{100 * ttft[0]:+.0f}, {100 * ttft[-1]:+.0f}] "
              f"(goal <= +10 %), tok/s {statistics.median(rate):.2f}x [{rate[0]:.2f}, {rate[-1]:.2f}] (goal >= 0.9x)")


if __name__ == "__main__":
    main()
