"""N simulated users on three paths in one run: /chat (Gradio's queue), /v1 (openai client), in-process Service.

Run: .venv/bin/python -m bench.load [--model bundled/deepseek-v3-tiny] [--tokens 64] [--users 1 2 4 8 16]
     [--repeats 3] [--threads 1]
The app runs as `app.py` on a loopback port (UI and /v1 on one server). HTTP users are separate processes
(bench/load_clients.py), so no client GIL is shared with another user or with the server; in-process users are
threads calling Service.stream in this process (the model in-process, no HTTP). Levels and paths are interleaved,
each repeated, so drift on a shared machine hits every path alike. Greedy, fixed prompts, fixed max new tokens;
tokens are counted by re-tokenizing each answer on every path. Prints per path and N: aggregate tokens/s (median of
repeats), p50/p95 time to first token (over all repeats) at the client and, for the HTTP paths, the p95 of the
server's own time to first text (the ttft_ms of its request log: from the Service taking the request to its first
text), then the issue's goal ratios. --threads sets torch's threads in the server and in this process alike
(default 1: on a shared, oversubscribed machine two OpenMP threads stall each other at every barrier, which swamps
what this bench measures: the cost of the path, not of the GEMMs).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.load_clients import serve

PROMPTS = ["Explain the while statement.", "What does the for statement do?", "How do I define a class?",
           "What is a list comprehension?", "Explain the try statement.", "What does import do?",
           "How are dictionaries used?", "What is a generator?"]
PATHS = ("in-process", "/chat", "/v1")
START_DELAY_S = 0.5  # commands carry a wall-clock start this far ahead, so every user starts together


@dataclass(frozen=True)
class UserResult:
    ttft_s: float
    total_s: float
    text: str


@dataclass(frozen=True)
class Level:
    rates: list[float]  # aggregate tokens/s, one per repeat
    ttfts: list[list[float]]  # every user's time to first token, one list per repeat
    served: list[list[float]]  # the server's own time to first text (its request log), one list per repeat

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    @property
    def all_ttfts(self) -> list[float]:
        return [t for run in self.ttfts for t in run]


class HttpUsers:
    """max_users client processes for one HTTP path, reused for every level."""

    def __init__(self, path: str, url: str, model: str, max_users: int) -> None:
        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        for _ in range(max_users):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=serve, args=(path.strip("/"), url, model, theirs), daemon=True)
            proc.start()
            self.conns.append(ours)
            self.procs.append(proc)
        for conn in self.conns:
            assert conn.recv() == "ready"

    def run(self, n: int, tokens: int) -> list[UserResult]:
        start_at = time.time() + START_DELAY_S
        for i, conn in enumerate(self.conns[:n]):
            conn.send((PROMPTS[i % len(PROMPTS)], tokens, start_at))
        return [UserResult(*conn.recv()) for conn in self.conns[:n]]

    def close(self) -> None:
        for conn in self.conns:
            conn.send(None)
        for proc in self.procs:
            proc.join(10)


def in_process_users(model: str, threads: int) -> Callable[[int, int], list[UserResult]]:
    """n threads calling Service.stream in this process, started together."""
    import torch

    from core.config import LimitsConfig
    from core.generation.prompting import ChatRequest
    from core.generation.sampling import SamplingParams
    from core.models.catalog import default_catalog
    from core.models.hardware import detect_hardware
    from core.serving.registry import ModelRegistry
    from core.serving.service import Service, TextDelta

    torch.set_num_threads(threads)
    service = Service(ModelRegistry(default_catalog(), detect_hardware()), LimitsConfig())

    def run(n: int, tokens: int) -> list[UserResult]:
        params = SamplingParams(max_new_tokens=tokens, temperature=0, repetition_penalty=1.0)
        results: list[UserResult] = []
        start_at = time.time() + START_DELAY_S

        def user(i: int) -> None:
            time.sleep(max(0.0, start_at - time.time()))
            start, first, text = time.time(), None, ""
            for event in service.stream(ChatRequest(PROMPTS[i % len(PROMPTS)]), model, "fp32", params):
                if isinstance(event, TextDelta):
                    first = first or (time.time() if event.text else None)
                    text += event.text
            end = time.time()
            results.append(UserResult((first or end) - start, end - start, text))

        threads = [threading.Thread(target=user, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    run(2, 8)  # warm-up: loads the model
    return run


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class ServerLog:
    """The server's stderr in a file; each read returns the ttft_ms of the request lines written since the last."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
        self.offset = 0

    def new_ttfts(self) -> list[float]:
        self.file.seek(self.offset)
        text = self.file.read()
        self.offset += len(text.encode("utf-8"))
        return [int(line.split(" ttft_ms=")[1].split()[0]) / 1000 for line in text.splitlines()
                if "playground.requests: /chat " in line and " ttft_ms=" in line]


def start_server(port: int, threads: int, log: ServerLog) -> subprocess.Popen:
    """app.py on a loopback port, as an operator would run it; returns once /v1/models answers."""
    import httpx

    server = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=log.file,
                              env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    for _ in range(480):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5).status_code == 200:
                return server
        except httpx.HTTPError:  # not listening yet
            pass
        time.sleep(0.5)
    server.kill()
    raise SystemExit("the app did not start within 4 minutes")


def measure(runners: dict[str, Any], users: list[int], tokens: int, repeats: int,
            count: Callable[[str], int], log: ServerLog) -> dict[str, dict[int, Level]]:
    """Every path at every level, interleaved, `repeats` times."""
    levels = {path: {n: Level([], [], []) for n in users} for path in runners}
    for _ in range(repeats):
        for n in users:
            for path, run in runners.items():
                results = run(n, tokens)
                wall = max(r.total_s for r in results)  # every user started at the same instant
                levels[path][n].rates.append(sum(count(r.text) for r in results) / wall)
                levels[path][n].ttfts.append([r.ttft_s for r in results])
                served = log.new_ttfts()  # in-process requests log nowhere: empty for that path
                levels[path][n].served.append(served)
    return levels


def paired(a: Level, b: Level, of: Callable[[Level, int], float]) -> float:
    """The median over repeats of of(a, i) / of(b, i): each ratio from runs minutes apart at most."""
    return statistics.median(of(a, i) / of(b, i) for i in range(len(a.rates)))


def rate_at(level: Level, i: int) -> float:
    return level.rates[i]


def p95_at(level: Level, i: int) -> float:
    return pct(level.ttfts[i], .95)


def served_p95_at(level: Level, i: int) -> float:
    return pct(level.served[i], .95)


def report(levels: dict[str, dict[int, Level]], users: list[int]) -> None:
    print(f"{'path':>10} {'users':>5} {'tok/s':>8} {'ttft p50':>9} {'ttft p95':>9} {'in Service p95':>14}   (tok/s: "
          "median of repeats; ttft over all repeats, at the client; in Service: the server's request log)")
    for path, by_n in levels.items():
        for n in users:
            level = by_n[n]
            served = [t for run in level.served for t in run]
            in_service = f"{pct(served, .95) * 1000:12.0f}ms" if served else f"{'-':>14}"
            print(f"{path:>10} {n:>5} {level.rate:8.1f} {statistics.median(level.all_ttfts) * 1000:7.0f}ms "
                  f"{pct(level.all_ttfts, .95) * 1000:7.0f}ms {in_service}")
    print("goal ratios, each the median over repeats of a ratio measured within one repeat:")
    core = levels["in-process"]
    if 1 in users:
        for path in ("/chat", "/v1"):
            print(f"  1 user {path:>5} / in-process tok/s    : {paired(levels[path][1], core[1], rate_at):5.2f}  "
                  "(goal >= 0.9)")
    if 1 in users and 8 in users:
        for path in PATHS:
            by_n = levels[path]
            print(f"  {path:>10} 8 users / 1 user tok/s : {paired(by_n[8], by_n[1], rate_at):5.2f}  (goal >= 3.5)")
            print(f"  {path:>10} p95 TTFT 8 users / 1   : {paired(by_n[8], by_n[1], p95_at):5.2f}  (goal <= 2)")
            if all(by_n[8].served) and all(by_n[1].served):
                print(f"  {path:>10}   of which in the Service : {paired(by_n[8], by_n[1], served_p95_at):5.2f}  "
                      "(the server's own time to first text, from its request log)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="bundled/deepseek-v3-tiny")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--users", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, in the server and in-process")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from transformers import AutoTokenizer

    from core.models.catalog import default_catalog

    tokenizer = AutoTokenizer.from_pretrained(default_catalog().get(args.model).source)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    log = ServerLog()
    server = start_server(port, args.threads, log)
    http = {path: HttpUsers(path, url, args.model, max(args.users)) for path in ("/chat", "/v1")}
    try:
        for users in http.values():
            users.run(max(args.users), 8)  # warm-up: the server loads the model, every client makes its first call
        runners = {"in-process": in_process_users(args.model, args.threads), **{p: u.run for p, u in http.items()}}
        log.new_ttfts()  # the warm-up's lines
        print(f"model {args.model} fp32, greedy, {args.tokens} new tokens, {args.repeats} repeats, {args.threads} "
              f"torch thread(s); load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at start (a shared machine: figures are noisy)")
        levels = measure(runners, args.users, args.tokens, args.repeats,
                         lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]), log)
        report(levels, args.users)
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        for users in http.values():
            users.close()
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
