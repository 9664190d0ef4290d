"""N simulated users through the app's real /chat API (gradio_client; the app runs as `app.py` on a loopback port).

Run: .venv/bin/python -m bench.load [--model bundled/deepseek-v3-tiny] [--tokens 64] [--users 1 2 4 8 16]
Greedy, fixed prompts, fixed max new tokens. Prints per N: aggregate tokens/s, p50/p95 time to first token,
p50/p95 per-token latency and the server's resident memory (RSS); then the 8-vs-1 throughput and p95-TTFT
ratios, all measured in this one run. The server is its own process, so client threads do not share its GIL.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import psutil  # noqa: E402
from gradio_client import Client  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from core.config import LimitsConfig  # noqa: E402
from core.generation.prompting import ChatRequest  # noqa: E402
from core.generation.sampling import SamplingParams  # noqa: E402
from core.generation.stream import GenerationStats  # noqa: E402
from core.models.catalog import default_catalog  # noqa: E402
from core.models.hardware import detect_hardware  # noqa: E402
from core.models.memory import format_bytes  # noqa: E402
from core.serving.registry import ModelRegistry  # noqa: E402
from core.serving.service import Finished, Service  # noqa: E402

PROMPTS = ["Explain the while statement.", "What does the for statement do?", "How do I define a class?",
           "What is a list comprehension?", "Explain the try statement.", "What does import do?",
           "How are dictionaries used?", "What is a generator?"]


@dataclass(frozen=True)
class UserResult:
    ttft_s: float
    total_s: float
    tokens: int

    @property
    def per_token_s(self) -> float:
        return (self.total_s - self.ttft_s) / (self.tokens - 1) if self.tokens > 1 else 0.0


def one_user(client: Client, prompt: str, model: str, tokens: int, tokenizer) -> UserResult:
    start = time.perf_counter()
    first, text = None, ""
    job = client.submit(prompt, "", "", model, "fp32", tokens, 0.0, 0.95, 50, 1.0, 0, api_name="/chat")
    for partial in job:
        if first is None and partial:
            first = time.perf_counter()
        text = partial
    end = time.perf_counter()
    return UserResult((first or end) - start, end - start, len(tokenizer(text, add_special_tokens=False)["input_ids"]))


def run_level(clients: list[Client], model: str, tokens: int, tokenizer) -> tuple[list[UserResult], float]:
    results: list[UserResult] = []
    lock = threading.Lock()

    def user(i: int) -> None:
        result = one_user(clients[i], PROMPTS[i % len(PROMPTS)], model, tokens, tokenizer)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(len(clients))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_server(port: int) -> subprocess.Popen:
    """app.py on a loopback port, as an operator would run it; returns once /chat answers."""
    server = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(240):
        try:
            Client(f"http://127.0.0.1:{port}/", verbose=False)
            return server
        except Exception:  # not listening yet
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the app did not start within 2 minutes")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="bundled/deepseek-v3-tiny")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--users", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(default_catalog().get(args.model).source)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = start_server(port)
    try:
        clients = [Client(f"http://127.0.0.1:{port}/", verbose=False) for _ in range(max(args.users))]
        run_level(clients[:2], args.model, 8, tokenizer)  # warm-up: loads the model
        report(clients, args, tokenizer, psutil.Process(server.pid))
    finally:
        server.terminate()
        server.wait(30)
    core_only(args)


def core_only(args: argparse.Namespace) -> None:
    """The same users calling Service.stream in-process: what the batcher costs without HTTP and gradio."""
    registry = ModelRegistry(default_catalog(), detect_hardware())
    service = Service(registry, LimitsConfig())
    loaded = registry.get(args.model, "fp32")
    params = SamplingParams(max_new_tokens=args.tokens, temperature=0, repetition_penalty=1.0)
    print("core only (Service.stream in this process, no HTTP):")
    rates: dict[int, float] = {}
    for n in args.users:
        stats: list[GenerationStats] = []

        def user(i: int, out: list[GenerationStats] = stats) -> None:
            events = list(service.stream(ChatRequest(PROMPTS[i % len(PROMPTS)]), args.model, "fp32", params))
            assert isinstance(events[-1], Finished)
            out.append(events[-1].stats)

        threads = [threading.Thread(target=user, args=(i,)) for i in range(n)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rates[n] = sum(s.new_tokens for s in stats) / (time.perf_counter() - start)
        ttfts = [s.ttft_s for s in stats]
        print(f"{n:>5} {rates[n]:8.1f} tok/s  ttft p50 {statistics.median(ttfts) * 1000:5.0f}ms "
              f"p95 {pct(ttfts, .95) * 1000:5.0f}ms  peak rows {registry.batcher(loaded.key).peak_rows}")
    if 1 in rates and 8 in rates:
        print(f"core throughput 8 users / 1 user : {rates[8] / rates[1]:.2f}x")


def report(clients: list[Client], args: argparse.Namespace, tokenizer, server: psutil.Process) -> None:
    print(f"model {args.model} fp32, greedy, {args.tokens} new tokens, through /chat; server RSS after warm-up "
          f"{format_bytes(server.memory_info().rss)}")
    print(f"{'users':>5} {'tok/s':>8} {'ttft p50':>9} {'ttft p95':>9} {'tok p50':>8} {'tok p95':>8} {'server RSS':>11}")
    summary: dict[int, tuple[float, float]] = {}
    for n in args.users:
        results, wall = run_level(clients[:n], args.model, args.tokens, tokenizer)
        rate = sum(r.tokens for r in results) / wall
        ttfts, per_token = [r.ttft_s for r in results], [r.per_token_s for r in results]
        summary[n] = (rate, pct(ttfts, 0.95))
        print(f"{n:>5} {rate:8.1f} {statistics.median(ttfts) * 1000:7.0f}ms {pct(ttfts, .95) * 1000:7.0f}ms "
              f"{statistics.median(per_token) * 1000:6.1f}ms {pct(per_token, .95) * 1000:6.1f}ms "
              f"{format_bytes(server.memory_info().rss):>11}")
    if 1 in summary and 8 in summary:
        print(f"throughput 8 users / 1 user : {summary[8][0] / summary[1][0]:.2f}x  (goal >= 3)")
        print(f"p95 TTFT   8 users / 1 user : {summary[8][1] / summary[1][1]:.2f}x  (goal < 2)")


if __name__ == "__main__":
    main()
