"""Servers the remote-model tests start on loopback: a fault server (an OpenAI-compatible chat endpoint that
misbehaves on request, by model name) and `transformers serve` over the bundled qwen2 checkpoint."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

WORDS = ["one", " two", " three", " four", " five"]
API_KEY = "sekret"
PROMPT_LOGPROBS = [None, -1.0, -2.0, -3.0]  # what /v1/completions scores any prompt as: perplexity e^2
FAULT_MODELS = ["ok", "drop", "garbage", "badjson", "slow", "stall", "trickle", "hold", "busy429", "busy503",
                "keyed", "error-event"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chunk(text: str = "", finish: str | None = None, usage: dict | None = None) -> bytes:
    event: dict = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}
    if finish:
        event["choices"][0]["finish_reason"] = finish
    if usage:
        event["usage"] = usage
    return f"data: {json.dumps(event)}\n\n".encode()


class FaultServer(ThreadingHTTPServer):
    """Counts what clients did: requests, hang-ups noticed while streaming, the most requests in flight at once."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.hangups: collections.Counter[str] = collections.Counter()  # per model: a late one elsewhere never counts
        self.in_flight = self.max_in_flight = 0
        self.bodies: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(BaseHTTPRequestHandler):
    server: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        if self.path != "/v1/models":
            return self._json(404, {"error": {"message": "no such route"}})
        self._json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in FAULT_MODELS]})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with self.server.lock:
            self.server.bodies.append(body)
        if self.path == "/v1/completions":  # vLLM-style echo + logprobs: the prompt's tokens scored
            logprobs = {"token_logprobs": PROMPT_LOGPROBS, "tokens": ["a"] * len(PROMPT_LOGPROBS)}
            return self._json(200, {"choices": [{"text": "", "index": 0, "logprobs": logprobs}]})
        try:
            self._answer(body.get("model", ""))
        except (BrokenPipeError, ConnectionResetError):
            with self.server.lock:
                self.server.hangups[body.get("model", "")] += 1

    def _answer(self, model: str) -> None:
        if model in ("busy429", "busy503"):
            return self._json(int(model[-3:]), {"error": {"message": "over capacity"}})
        if model == "keyed" and self.headers.get("Authorization") != f"Bearer {API_KEY}":
            return self._json(401, {"error": {"message": "invalid api key"}})
        if model not in FAULT_MODELS:
            return self._json(404, {"error": {"message": f"The model `{model}` does not exist."}})
        if model == "slow":
            time.sleep(3)
        self._start_stream()
        if model == "hold":  # counts requests in flight while it holds them (before the client can see an end)
            self._hold()
        if model in ("ok", "keyed", "hold"):
            for word in WORDS:
                self._send(chunk(word))
            self._send(chunk(finish="stop", usage={"prompt_tokens": 7, "completion_tokens": 5}))
            self._send(b"data: [DONE]\n\n")
        elif model == "trickle":
            for i in range(400):
                self._send(chunk(f" w{i}"))
                time.sleep(0.05)
        else:
            self._faulty(model)
        self.close_connection = True

    def _hold(self) -> None:
        with self.server.lock:
            self.server.in_flight += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        time.sleep(1.0)  # long enough for every admitted request to arrive, even on a loaded machine
        with self.server.lock:
            self.server.in_flight -= 1

    def _faulty(self, model: str) -> None:
        self._send(chunk("one") + chunk(" two"))
        if model == "garbage":
            self._send(b"this is not an event stream\n\n")
        elif model == "badjson":
            self._send(b"data: {not json\n\n")
        elif model == "error-event":
            self._send(b'data: {"error": "CUDA out of memory"}\n\n')
        elif model == "stall":
            time.sleep(3)
        with contextlib.suppress(OSError):  # "drop" (and the others): cut the connection, no finish, no [DONE]
            self.connection.shutdown(socket.SHUT_RDWR)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()

    def _send(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def _json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Poll url until it answers 200; RuntimeError (with the server's log tail) if the process dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout_s:.0f} s")


@contextlib.contextmanager
def transformers_serve(checkpoint: Path, log: Path, timeout_s: float = 180) -> Iterator[str]:
    """`transformers serve <folder>` on a free loopback port (continuous batching off, fp32 on CPU); its /v1 URL."""
    port = free_port()
    cli = Path(sys.executable).with_name("transformers")
    cmd = [str(cli), "serve", str(checkpoint), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
           "--dtype", "float32", "--no-continuous-batching", "--log-level", "warning"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        wait_ready(f"http://127.0.0.1:{port}/health", proc, timeout_s)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
