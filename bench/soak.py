"""Soak: N users x M minutes of mixed chat, caption and compare against app.py on loopback; bounded, self-stopping.

Run: .venv/bin/python -m bench.soak [--users 16] [--minutes 5] [--baseline-s 60] [--tokens 32]
First the same users chat alone for --baseline-s (chat latency alone); then the mixed load (about 70 % chat,
20 % caption, 10 % compare) for --minutes. Each user has its own gradio_client session and stops starting
requests at the deadline; every request has a timeout and the server is stopped at the end whatever happens.
Prints requests, failures (anything but an answer or a "busy" refusal), busy refusals, p50/p95 latency per kind,
chat p95 mixed / alone (goal <= 3x), and the server's RSS after warm-up and at the end (goal: drift <= 5 %).
The server's RSS is also sampled every 2 s: the drift between the medians of the first and the last minute after
warm-up (a point sample moves by tens of MB with the requests in flight), and the least-squares slope, whole and
per half, which tells a bounded cache filling up (second half flat) from growth without bound (both halves
alike); SOAK_RSS_CSV=path writes the samples (seconds since start, bytes). Last, the RSS after warm-up and at
the end split by kind of mapping (bench/rss_parts.py): what grew.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import psutil  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402

from bench.load import PROMPTS, pct, start_server  # noqa: E402
from bench.rss_parts import describe_growth, rss_by_kind  # noqa: E402
from core.models.memory import format_bytes  # noqa: E402
from core.paths import ASSETS  # noqa: E402

TEXT, VISION = "bundled/deepseek-v3-tiny", "bundled/deepseek-vl-tiny"
MIX = (("chat", 0.7), ("caption", 0.2), ("compare", 0.1))
REQUEST_TIMEOUT_S = 300.0


@dataclass
class RssTrace:
    """The server's RSS sampled every `every_s` seconds in a background thread: (seconds since start, bytes)."""
    process: psutil.Process
    every_s: float = 2.0
    samples: list[tuple[float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self.stop.wait(self.every_s):
            try:
                self.samples.append((time.monotonic() - t0, self.process.memory_info().rss))
            except psutil.Error:  # the server has gone: nothing more to sample
                return

    def window(self, start: float, end: float) -> list[tuple[float, int]]:
        return [(t, rss) for t, rss in self.samples if start <= t <= end]


def slope_per_min(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS over time, in bytes per minute (0 with fewer than 2 samples)."""
    if len(samples) < 2:
        return 0.0
    ts, ys = [t for t, _ in samples], [float(y) for _, y in samples]
    mt, my = statistics.fmean(ts), statistics.fmean(ys)
    var = sum((t - mt) ** 2 for t in ts)
    return 60 * sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / var if var else 0.0


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    busy: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float | None, error: str | None = None) -> None:
        with self.lock:
            if error is None:
                self.latencies[kind].append(seconds or 0.0)
            elif "busy" in error.lower() or "already have" in error:
                self.busy[kind] += 1
            else:
                self.failures[kind] += 1
                self.errors.append(f"{kind}: {error[:160]}")


def connect(url: str, tries: int = 5) -> Client:
    """A gradio_client session; a busy machine can time its config request out, so a few tries."""
    for _ in range(tries - 1):
        try:
            return Client(url, verbose=False)
        except Exception:  # noqa: BLE001 - httpx timeouts and gradio_client's own errors alike
            time.sleep(2)
    return Client(url, verbose=False)


def one_request(client: Client, kind: str, rng: random.Random, tokens: int, image: str) -> None:
    """One request of this kind, to the end of its stream (raises on any error)."""
    prompt = rng.choice(PROMPTS)
    if kind == "chat":
        job = client.submit(prompt, "", "", TEXT, "fp32", tokens, 0.0, 0.95, 50, 1.0, 0, api_name="/chat")
    elif kind == "caption":
        job = client.submit(handle_file(image), "", rng.choice(["short", "detailed"]), VISION, "fp32", 16,
                            api_name="/caption")
    else:
        job = client.submit(TEXT, ["fp32"], prompt, 8, 0, api_name="/compare")
    job.result(timeout=REQUEST_TIMEOUT_S)


def user_loop(client: Client, seed: int, until: float, mix: tuple[tuple[str, float], ...], tally: Tally,
              tokens: int, images: list[str]) -> None:
    rng = random.Random(seed)
    kinds, weights = zip(*mix, strict=True)
    while time.monotonic() < until:
        kind = rng.choices(kinds, weights)[0]
        start = time.perf_counter()
        try:
            one_request(client, kind, rng, tokens, rng.choice(images))
            tally.record(kind, time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - every failure is counted, none stops the soak
            tally.record(kind, None, f"{type(exc).__name__}: {exc}")


def run_phase(clients: list[Client], seconds: float, mix: tuple[tuple[str, float], ...], tokens: int,
              images: list[str]) -> Tally:
    tally, until = Tally(), time.monotonic() + seconds
    threads = [threading.Thread(target=user_loop, args=(c, i, until, mix, tally, tokens, images), daemon=True)
               for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, until - time.monotonic()) + REQUEST_TIMEOUT_S + 30)  # bounded, whatever happens
    return tally


def describe(name: str, tally: Tally) -> None:
    total = sum(len(v) for v in tally.latencies.values()) + sum(tally.failures.values()) + sum(tally.busy.values())
    print(f"{name}: {total} requests, {sum(tally.failures.values())} failures, {sum(tally.busy.values())} busy")
    for kind, values in sorted(tally.latencies.items()):
        print(f"  {kind:<8} {len(values):>5} ok  p50 {statistics.median(values) * 1000:7.0f} ms  "
              f"p95 {pct(values, .95) * 1000:7.0f} ms  failures {tally.failures[kind]}  busy {tally.busy[kind]}")
    for line in tally.errors[:5]:
        print(f"  e.g. {line}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--baseline-s", type=float, default=60.0, help="chat-only phase first (0 = skip)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads in the server")
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    images = [str(p) for p in sorted((ASSETS / "images").glob("*.png"))]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = start_server(port, args.threads)
    process = psutil.Process(server.pid)
    trace = RssTrace(process)
    trace.start()
    t0 = time.monotonic()
    try:
        clients = [connect(f"http://127.0.0.1:{port}/") for _ in range(args.users)]
        run_phase(clients[:3], 1, (("chat", 1), ("caption", 1), ("compare", 1)), 8, images)  # warm-up: loads all
        alone = run_phase(clients, args.baseline_s, (("chat", 1.0),), args.tokens, images) if args.baseline_s else None
        rss_start = process.memory_info().rss
        mixed_s = args.minutes * 60
        warm = run_phase(clients, mixed_s * 0.2, MIX, args.tokens, images)  # the first fifth warms caches up
        rss_warm, t_warm, parts_warm = process.memory_info().rss, time.monotonic() - t0, rss_by_kind(server.pid)
        mixed = run_phase(clients, mixed_s * 0.8, MIX, args.tokens, images)
        rss_end, t_end, parts_end = process.memory_info().rss, time.monotonic() - t0, rss_by_kind(server.pid)
    finally:
        trace.stop.set()
        server.terminate()
        server.wait(30)
    print(f"{args.users} users, {args.minutes:g} min mixed ({', '.join(f'{k} {w:.0%}' for k, w in MIX)}), "
          f"{args.tokens} new tokens per chat, loopback; chat-only baseline {args.baseline_s:g} s")
    if alone:
        describe("chat alone", alone)
    describe("mixed, first fifth (warm-up)", warm)
    describe("mixed, after warm-up", mixed)
    if alone and alone.latencies["chat"] and mixed.latencies["chat"]:
        ratio = pct(mixed.latencies["chat"], .95) / pct(alone.latencies["chat"], .95)
        print(f"chat p95 mixed / alone: {ratio:.2f}x  (goal <= 3)")
    drift = (rss_end - rss_warm) / rss_warm
    print(f"server RSS: before mixed {format_bytes(rss_start)}, after warm-up {format_bytes(rss_warm)}, "
          f"end {format_bytes(rss_end)}; drift after warm-up {drift:+.1%}  (goal <= 5 %)")
    describe_trend(trace, t_warm, t_end)
    if parts_warm:
        print("server RSS by kind of mapping, after warm-up -> end:\n" + describe_growth(parts_warm, parts_end))


def describe_trend(trace: RssTrace, t_warm: float, t_end: float) -> None:
    """RSS slope after warm-up, over each half: a bounded cache filling up shows a smaller second-half slope."""
    mid = (t_warm + t_end) / 2
    whole, first, second = (slope_per_min(trace.window(a, b)) for a, b in
                            ((t_warm, t_end), (t_warm, mid), (mid, t_end)))
    print(f"server RSS slope after warm-up {format_bytes(whole)}/min (first half {format_bytes(first)}/min, "
          f"second half {format_bytes(second)}/min), {len(trace.window(t_warm, t_end))} samples")
    span = min(60.0, (t_end - t_warm) / 3)  # a point sample moves by tens of MB with the requests in flight
    early, late = ([rss for _, rss in trace.window(a, b)] for a, b in ((t_warm, t_warm + span), (t_end - span, t_end)))
    if early and late:
        a, b = statistics.median(early), statistics.median(late)
        print(f"server RSS median over the first {span:.0f} s after warm-up {format_bytes(a)}, over the last "
              f"{span:.0f} s {format_bytes(b)}: drift {(b - a) / a:+.1%}  (goal <= 5 %)")
    if os.environ.get("SOAK_RSS_CSV"):
        with open(os.environ["SOAK_RSS_CSV"], "w") as out:
            out.writelines(f"{t:.1f},{rss}\n" for t, rss in trace.samples)


if __name__ == "__main__":
    main()
