"""Remote models: the configured (and discovered) OpenAI-compatible servers, their catalog entries, their status,
and one request's answer streamed as the same ServiceEvents a local model gives.

Remote models never load here and never count against the local memory budget; the Service routes a request for
one straight to its server (never through ZeroGPU's GPU slot). A fault after the first token keeps the answer so
far and says what happened; a fault before it is raised like any other refusal.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from core.config import RemoteModelConfig
from core.errors import BadSettingError, PlaygroundError
from core.generation.prompting import DOCUMENT_TEMPLATE, ChatRequest
from core.generation.sampling import SamplingParams
from core.generation.stream import GenerationStats
from core.generation.vision import VisionRequest
from core.models.catalog import CatalogEntry
from core.serving.events import ContextMeter, Finished, Notice, ServiceEvent, TextDelta
from core.serving.remote import RemoteServer

REMOTE_PRECISION = "remote"  # what the precision picker shows for a remote model: the server decides


@dataclass(frozen=True)
class RemoteModel:
    config: RemoteModelConfig
    server: RemoteServer

    def entry(self) -> CatalogEntry:
        """The catalog entry the pickers show: marked remote, with the host."""
        kind = "vision" if self.config.vision else "text"
        return CatalogEntry(self.config.id, "remote", kind, self.server.base_url,
                            f"{self.config.model} served by {self.server.host}", self.config.context_window,
                            params=f"remote · {self.server.host}")


@dataclass(frozen=True)
class RemoteRow:
    """One line of the Resources tab's remote table."""

    model_id: str
    model: str
    host: str
    reachable: str  # "yes", "no", "not contacted yet"
    latency_s: float | None
    in_flight: int
    limit: int
    error: str


class RemoteHub:
    """Every remote model by id; servers (one per base URL) are shared by the models they serve."""

    def __init__(self, configs: Iterable[RemoteModelConfig] = ()) -> None:
        self.servers: dict[str, RemoteServer] = {}
        self.models: dict[str, RemoteModel] = {}
        self.down: dict[str, str] = {}  # a --remote URL that could not be listed -> why
        for config in configs:
            self.add(config)

    def add(self, config: RemoteModelConfig) -> RemoteModel:
        """Register one remote model (its server is created once per base URL)."""
        if not config.id.strip() or not config.model.strip():
            raise BadSettingError(f"A remote model needs an id and a model name (base_url {config.base_url}).")
        key = config.base_url.rstrip("/")
        if key not in self.servers:
            self.servers[key] = RemoteServer(key, config.max_concurrency, config.connect_timeout_s,
                                             config.read_timeout_s)
        model = self.models[config.id] = RemoteModel(config, self.servers[key])
        return model

    def discover(self, base_url: str, template: RemoteModelConfig | None = None) -> list[str]:
        """Add every model GET base_url/models lists as remote/<name>; a server that cannot be listed is noted."""
        base = template or RemoteModelConfig(id="", base_url=base_url, model="")
        try:
            server = self.servers.get(base_url.rstrip("/")) or RemoteServer(
                base_url, base.max_concurrency, base.connect_timeout_s, base.read_timeout_s)
            self.servers.setdefault(server.base_url, server)
            names = server.list_models(base.api_key_env)
        except PlaygroundError as exc:
            self.down[base_url.rstrip("/")] = str(exc)
            return []
        self.down.pop(server.base_url, None)
        return [self.add(replace(base, id=f"remote/{name}", base_url=server.base_url, model=name)).config.id
                for name in names]

    def probe(self) -> None:
        """Ask every configured server for its model list once (at start-up), so pickers can mark the unreachable."""
        for server in self.servers.values():
            key_env = next((m.config.api_key_env for m in self.models.values() if m.server is server), "")
            try:
                server.list_models(key_env)
            except PlaygroundError:
                pass  # recorded in server.status

    def entries(self) -> list[CatalogEntry]:
        return [m.entry() for m in self.models.values()]

    def serves(self, model_id: str) -> bool:
        return model_id in self.models

    def label(self, model_id: str) -> str:
        """'remote · host', plus 'unavailable' when the last contact failed to connect."""
        server = self.models[model_id].server
        down = " · unavailable" if server.status.reachable is False else ""
        return f"remote · {server.host}{down}"

    def report(self) -> list[RemoteRow]:
        """One row per remote model for the Resources tab."""
        rows = []
        for model_id, m in self.models.items():
            status = m.server.status
            reachable = {True: "yes", False: "no", None: "not contacted yet"}[status.reachable]
            rows.append(RemoteRow(model_id, m.config.model, m.server.host, reachable, status.latency_s,
                                  status.in_flight, m.server.max_concurrency, status.error))
        return rows

    def stream(self, request: ChatRequest | VisionRequest, model_id: str, params: SamplingParams,
               stop: threading.Event) -> Iterator[ServiceEvent]:
        """One answer from the remote as ServiceEvents; Stop or closing the iterator hangs up on the server."""
        remote = self.models[model_id]
        body = request_body(remote.config, request, params)
        yield from _events(remote, body, stop)

    def close(self) -> None:
        for server in self.servers.values():
            server.close()


def build_hub(configs: Iterable[RemoteModelConfig], urls: Iterable[str] = (), key_env: str = "") -> RemoteHub:
    """The configured remotes plus every model each URL lists (with the key in $key_env), each server asked once;
    never raises for a server that is down (its models are marked unavailable, an unlisted URL is in hub.down)."""
    hub = RemoteHub(configs)
    hub.probe()
    for url in urls:
        hub.discover(url, RemoteModelConfig(id="", base_url=url, model="", api_key_env=key_env))
    return hub


def _events(remote: RemoteModel, body: dict[str, Any], stop: threading.Event) -> Iterator[ServiceEvent]:
    start, first_at, chunks = time.perf_counter(), None, 0
    prompt_tokens = completion_tokens = None
    cut = ""
    stream = remote.server.stream_chat(body, remote.config.api_key_env, stop)
    try:
        for chunk in stream:
            if chunk.text:
                first_at, chunks = first_at or time.perf_counter(), chunks + 1
                yield TextDelta(chunk.text)
            prompt_tokens = chunk.prompt_tokens if chunk.prompt_tokens is not None else prompt_tokens
            completion_tokens = chunk.completion_tokens if chunk.completion_tokens is not None else completion_tokens
    except PlaygroundError as exc:
        if first_at is None:
            raise
        cut = f"{exc} The answer so far is kept."
    finally:
        stream.close()
    end = time.perf_counter()
    if prompt_tokens is not None:
        window = remote.config.context_window
        yield ContextMeter(f"Context {prompt_tokens:,} / {window:,} tokens (counted by the remote).",
                           prompt_tokens, window)
    if cut:
        yield Notice(cut)
    if completion_tokens is None:
        yield Notice("token count = stream chunks (the server sent no usage)")
    stats = GenerationStats(prompt_tokens or 0, completion_tokens if completion_tokens is not None else chunks,
                            (first_at or end) - start, end - start, f"remote {remote.server.host}", REMOTE_PRECISION,
                            stop.is_set() or bool(cut))
    yield Finished(stats, f"remote: {remote.config.model}")


def request_body(config: RemoteModelConfig, request: ChatRequest | VisionRequest,
                 params: SamplingParams) -> dict[str, Any]:
    """The chat-completions body: messages and the sampling fields every OpenAI-compatible server accepts."""
    body: dict[str, Any] = {"model": config.model, "messages": to_messages(request, config.vision),
                            "max_tokens": params.max_new_tokens, "temperature": params.temperature,
                            "top_p": 1.0 if params.temperature == 0 else params.top_p}
    if params.seed is not None:
        body["seed"] = params.seed
    return body


def to_messages(request: ChatRequest | VisionRequest, vision: bool) -> list[dict[str, Any]]:
    """OpenAI chat messages: system, history, the new turn (the document inside it; the image in the first user
    turn as a data URL)."""
    system = [{"role": "system", "content": request.system}] if request.system.strip() else []
    turns = [{"role": t.role, "content": t.content} for t in request.history]
    if isinstance(request, ChatRequest):
        text = (DOCUMENT_TEMPLATE.format(document=request.document, message=request.message)
                if request.document else request.message)
        return [*system, *turns, {"role": "user", "content": text}]
    if not vision:
        raise BadSettingError("This remote model is not configured with vision: true, so it cannot see images.")
    turns.append({"role": "user", "content": request.prompt})
    first = next(i for i, t in enumerate(turns) if t["role"] == "user")
    image = {"type": "image_url", "image_url": {"url": data_url(request.image)}}
    turns[first] = {"role": "user", "content": [image, {"type": "text", "text": turns[first]["content"]}]}
    return [*system, *turns]


def data_url(image: Any) -> str:
    """A PIL image as a PNG data URL (what OpenAI-compatible vision servers accept)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
