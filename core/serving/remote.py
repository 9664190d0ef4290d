"""One OpenAI-compatible server elsewhere (vLLM, SGLang, TGI, `transformers serve`, another Playground).

httpx, one pooled client per server: connect and read timeouts, a bounded number of requests in flight, SSE chat
streams parsed line by line, every fault turned into a PlaygroundError a person can read, and Stop closing the
HTTP response (the server sees the disconnect and stops generating).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.errors import BadSettingError, BusyError, GenerationError, ModelUnavailableError

MAX_ERROR_BODY = 2000  # characters of an error response kept for the message
STOP_POLL_S = 0.05  # how often a running stream looks at its Stop event


class RemoteStreamError(GenerationError):
    """The remote failed after the request was accepted (dropped, silent, malformed): the answer so far is kept."""


@dataclass
class RemoteStatus:
    """What the Resources tab shows for a server."""

    reachable: bool | None = None  # None: not contacted yet
    latency_s: float | None = None  # the last call's time to first byte (a listing) or first token (a chat)
    error: str = ""  # the last failure, in words
    in_flight: int = 0


@dataclass(frozen=True)
class Chunk:
    """One parsed stream event: text, or the end (finish reason), with token usage when the server sends it."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class RemoteServer:
    """A pooled HTTP client for one base URL, at most max_concurrency requests in flight."""

    def __init__(self, base_url: str, max_concurrency: int = 8, connect_timeout_s: float = 5.0,
                 read_timeout_s: float = 120.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise BadSettingError(f"A remote's base_url must start with http:// or https://, got '{base_url}'.")
        if max_concurrency < 1:
            raise BadSettingError(f"max_concurrency of {base_url} must be at least 1.")
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        self.max_concurrency, self.read_timeout_s = max_concurrency, read_timeout_s
        self.status = RemoteStatus()
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._lock = threading.Lock()
        timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        limits = httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency)
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, limits=limits, trust_env=False)

    def list_models(self, api_key_env: str = "") -> list[str]:
        """The model names GET /models lists; ModelUnavailableError when the server cannot be asked."""
        start = time.perf_counter()
        try:
            response = self._client.get("/models", headers={**headers(api_key_env), "Connection": "close"})
        except httpx.HTTPError as exc:
            raise self._record_failure(self._transport_error(exc), _unreachable(exc)) from None
        if response.status_code != 200:
            raise self._record_failure(http_error(response.status_code, response.text, self.host, "", api_key_env))
        try:
            names = [str(m["id"]) for m in response.json()["data"]]
        except (ValueError, KeyError, TypeError):
            raise self._record_failure(ModelUnavailableError(
                f"The remote at {self.host} answered GET /models with something that is not a model list.")) from None
        self._record_success(time.perf_counter() - start)
        return names

    def stream_chat(self, body: dict[str, Any], api_key_env: str, stop: threading.Event) -> Iterator[Chunk]:
        """POST /chat/completions with stream=true; the parsed chunks. Stop or closing the iterator hangs up."""
        if not self._slots.acquire(timeout=self.read_timeout_s):
            raise BusyError(f"The remote at {self.host} already has {self.max_concurrency} requests in flight "
                            "(its configured limit); try again in a moment.")
        self._count(+1)
        try:
            yield from self._stream(body, api_key_env, stop)
        finally:
            self._count(-1)
            self._slots.release()

    def prompt_logprobs(self, model: str, text: str, api_key_env: str = "") -> list[float] | str:
        """Log-probabilities of text's tokens as the server scores them (legacy /completions with echo and logprobs,
        as vLLM answers it); a sentence saying why when the server gives none."""
        body = {"model": model, "prompt": text, "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 0}
        try:
            response = self._client.post("/completions", json=body, headers=headers(api_key_env))
        except httpx.HTTPError as exc:
            return f"the server could not be asked ({_reason(exc)})"
        if response.status_code != 200:
            return f"the server refused echo + logprobs ({response.status_code})"
        try:
            values = response.json()["choices"][0]["logprobs"]["token_logprobs"]
            scored = [float(v) for v in values if v is not None]
        except (ValueError, KeyError, TypeError, IndexError):
            return "the server returned no prompt logprobs"
        return scored or "the server returned no prompt logprobs"

    def close(self) -> None:
        self._client.close()

    def _stream(self, body: dict[str, Any], api_key_env: str, stop: threading.Event) -> Iterator[Chunk]:
        start, first = time.perf_counter(), True
        try:
            response = self._open(body, api_key_env)
            try:
                if response.status_code != 200:
                    text = response.read().decode("utf-8", "replace")
                    raise self._record_failure(http_error(response.status_code, text, self.host, body.get("model", ""),
                                                          api_key_env))
                with HangUpOnStop(stop, response):
                    for chunk in parse_sse(response.iter_lines(), self.host):
                        if first and chunk.text:
                            first = False
                            self._record_success(time.perf_counter() - start)
                        yield chunk
            finally:
                response.close()
        except httpx.HTTPError as exc:
            if stop.is_set():  # our own hang-up on Stop
                return
            raise self._record_failure(self._transport_error(exc), _unreachable(exc)) from None

    def _open(self, body: dict[str, Any], api_key_env: str) -> httpx.Response:
        """Send the request; once more on a fresh connection if a pooled one turns out dead before any answer."""
        request = self._client.build_request("POST", "/chat/completions", json={**body, "stream": True},
                                             headers=headers(api_key_env))
        try:
            return self._client.send(request, stream=True)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            return self._client.send(request, stream=True)

    def _transport_error(self, exc: httpx.HTTPError) -> Exception:
        if isinstance(exc, httpx.ConnectTimeout):
            return ModelUnavailableError(f"The remote at {self.host} did not accept a connection in time.")
        if isinstance(exc, httpx.ConnectError):
            return ModelUnavailableError(f"Cannot reach the remote at {self.host}: {_reason(exc)}.")
        if isinstance(exc, httpx.ReadTimeout):
            return RemoteStreamError(f"The remote at {self.host} sent nothing for {self.read_timeout_s:g} s "
                                     "(read timeout); the request was abandoned.")
        return RemoteStreamError(f"The remote at {self.host} closed the connection mid-answer ({_reason(exc)}).")

    def _record_success(self, latency_s: float) -> None:
        with self._lock:
            self.status.reachable, self.status.latency_s, self.status.error = True, latency_s, ""

    def _record_failure(self, error: Exception, unreachable: bool = False) -> Exception:
        with self._lock:
            self.status.error = str(error)
            self.status.reachable = not unreachable  # it answered (even with an error) unless we could not connect
        return error

    def _count(self, delta: int) -> None:
        with self._lock:
            self.status.in_flight += delta


def headers(api_key_env: str) -> dict[str, str]:
    """The Authorization header from the named environment variable (none when unnamed or unset)."""
    key = os.environ.get(api_key_env, "") if api_key_env else ""
    return {"Authorization": f"Bearer {key}"} if key else {}


def http_error(status: int, body: str, host: str, model: str, api_key_env: str) -> Exception:
    """A readable PlaygroundError for a non-200 answer."""
    detail = _server_message(body)
    said = f" The server said: {detail}" if detail else ""
    if status in (401, 403):
        where = f"the key in ${api_key_env}" if api_key_env and os.environ.get(api_key_env) else "no API key"
        hint = " (set api_key_env for this remote)" if not api_key_env else f" (check ${api_key_env})"
        return ModelUnavailableError(f"The remote at {host} refused {where} ({status}){hint}.{said}")
    if status in (429, 503):
        return BusyError(f"The remote at {host} is busy ({status}); try again in a moment.{said}")
    if status == 404 or (status in (400, 422) and "model" in detail.lower() and model):
        return ModelUnavailableError(f"The remote at {host} does not serve the model '{model}' ({status}).{said}")
    if 400 <= status < 500:
        return BadSettingError(f"The remote at {host} refused the request ({status}).{said}")
    return GenerationError(f"The remote at {host} failed ({status}).{said}")


def parse_sse(lines: Iterator[str], host: str) -> Iterator[Chunk]:
    """OpenAI chat-completion chunks from SSE lines; RemoteStreamError for garbage or a stream cut short."""
    finished = False
    for line in lines:
        if not line or line.startswith((":", "event:", "id:", "retry:")):
            continue
        if not line.startswith("data:"):
            raise RemoteStreamError(f"The remote at {host} sent a malformed stream line: {line[:80]!r}.")
        data = line[5:].strip()
        if data == "[DONE]":
            return
        chunk = _chunk(data, host)
        finished = finished or chunk.finish_reason is not None
        yield chunk
    if not finished:
        raise RemoteStreamError(f"The remote at {host} ended the stream before the answer was finished.")


def _chunk(data: str, host: str) -> Chunk:
    try:
        event = json.loads(data)
    except ValueError:
        raise RemoteStreamError(f"The remote at {host} sent a malformed stream event: {data[:80]!r}.") from None
    if not isinstance(event, dict):
        raise RemoteStreamError(f"The remote at {host} sent a malformed stream event: {data[:80]!r}.")
    if "error" in event:
        raise RemoteStreamError(f"The remote at {host} failed mid-answer: {_server_message(json.dumps(event))}")
    usage = event.get("usage") or {}
    choices = event.get("choices") or [{}]
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise RemoteStreamError(f"The remote at {host} sent a chunk without choices: {data[:80]!r}.")
    delta = choices[0].get("delta") or {}
    reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
    text = (f"<think>{reasoning}</think>" if reasoning else "") + (delta.get("content") or "")
    return Chunk(text, choices[0].get("finish_reason"), usage.get("prompt_tokens"), usage.get("completion_tokens"))


class HangUpOnStop:
    """While active, a watcher closes the response's socket as soon as stop is set (unblocking the reader)."""

    def __init__(self, stop: threading.Event, response: httpx.Response) -> None:
        self.stop, self.response, self.done = stop, response, threading.Event()

    def __enter__(self) -> HangUpOnStop:
        threading.Thread(target=self._watch, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()

    def _watch(self) -> None:
        while not self.done.wait(STOP_POLL_S):
            if self.stop.is_set():
                stream = self.response.extensions.get("network_stream")
                sock = stream.get_extra_info("socket") if stream is not None else None
                if isinstance(sock, socket.socket):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return


def _server_message(body: str) -> str:
    """The human part of an error body: OpenAI's error.message, FastAPI's detail, or the text itself."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:MAX_ERROR_BODY]
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message", "")))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:MAX_ERROR_BODY]
    return str(data)[:MAX_ERROR_BODY]


def _unreachable(exc: httpx.HTTPError) -> bool:
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return "connection refused" if "refused" in text.lower() else text
