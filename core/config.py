"""App configuration: frozen dataclasses read from YAML; unknown keys are an error."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from core.errors import PlaygroundError

T = TypeVar("T")


class ConfigError(PlaygroundError):
    """A config file that cannot be used as written."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    max_queue: int = 64  # waiting requests before "busy"
    concurrency: int = 8  # events running at once (generation is batched behind them)
    api: bool | None = None  # the OpenAI-compatible /v1 routes; None: on, except on ZeroGPU (no visitor quota there)
    api_key: str = ""  # bearer key the /v1 routes require ("" = none; the env var PLAYGROUND_API_KEY sets one too)
    stream_updates_per_s: float = 20.0  # text updates per answer sent to a browser, /chat or /v1 (0 = every token)
    max_threads: int = 40  # gradio's worker threads; the bounds below keep some free for small events
    max_in_flight: int = 24  # chat + caption answers streaming at once; more get "server is busy" at once
    max_in_flight_per_client: int = 8  # per browser session / API client, across chat, caption and compare
    heavy_waiting: int = 4  # /compare runs one at a time; this many more may wait, the rest get "busy"
    cache_sweep_s: int = 600  # every this often, uploads and other temp files older than cache_max_age_s go
    cache_max_age_s: int = 3600
    auth: dict[str, str] = field(default_factory=dict)  # user -> password for a UI login (or PLAYGROUND_AUTH)
    log_level: str = "INFO"  # DEBUG, INFO (one line per request), WARNING, ERROR
    admin_token: str | None = None  # for Unload / Stop fine-tune (or PLAYGROUND_ADMIN_TOKEN); none: loopback only
    malloc_arena_max: int = 2  # glibc malloc arenas for the worker threads (0 = glibc's 8 x cores); see app.py
    malloc_trim_s: float = 10.0  # give freed native memory back to the OS this often (0 = never)
    max_sessions: int = 1000  # browser/API sessions whose gradio state stays in memory (least recently used go)


@dataclass(frozen=True)
class LimitsConfig:
    max_new_tokens: int = 2048
    max_compare_prompt_tokens: int = 2048  # /compare runs the prompt once per precision: a tighter bound
    max_prompt_chars: int = 400_000  # refuse before tokenizing anything larger
    max_document_bytes: int = 2_000_000
    stream_timeout_s: float = 600.0  # no token for this long = stuck (a 32K prefill on 2 CPU cores takes minutes)
    max_context_tokens: int | None = None  # cap every model's window (None: the model's own, e.g. 32K)
    max_upload_bytes: int = 50_000_000  # any upload; larger ones are refused while streaming, nothing kept
    max_image_bytes: int = 20_000_000  # uploads larger than this are refused unread
    max_image_pixels: int = 40_000_000  # refused before decoding (30000 x 30000 bombs end here)
    max_image_side: int = 2048  # longer sides are downscaled to this, with a notice
    max_batch_images: int = 100  # images one batch caption request may hold; the rest are refused by name
    max_zip_files: int = 1000  # files in one uploaded zip, counted from its headers before unpacking
    max_zip_bytes: int = 500_000_000  # declared uncompressed size of one zip (bombs end here, unread)


@dataclass(frozen=True)
class RemoteModelConfig:
    """A model served by an OpenAI-compatible engine elsewhere (vLLM, SGLang, TGI, `transformers serve`...)."""

    id: str  # what users pick, e.g. "remote/deepseek-v3"
    base_url: str  # e.g. http://gpu-box:8000/v1
    model: str  # the name the server knows
    api_key_env: str = ""  # the environment variable holding the key ("" = no key)
    vision: bool = False  # True: image parts are sent (Caption tab)
    max_concurrency: int = 8  # requests in flight to this server at once; more wait, then get "busy"
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 120.0  # longest silence between two stream events
    context_window: int = 32768  # shown in the context meter


@dataclass(frozen=True)
class ModelsConfig:
    default_text: str = "bundled/deepseek-v3-tiny"
    default_vision: str = "bundled/deepseek-vl-tiny"
    memory_budget_bytes: int | None = None  # None: free device memory / available RAM
    local_paths: dict[str, str] = field(default_factory=dict)  # catalog id -> local folder
    remote: tuple[RemoteModelConfig, ...] = ()  # OpenAI-compatible servers elsewhere (README "Scale out")
    allow_calibration: bool | None = None  # GPTQ calibration on request; None: on locally, off on a Space


@dataclass(frozen=True)
class FinetuneConfig:
    keep_runs: int = 20  # finished runs kept in $PLAYGROUND_CACHE/finetuned; the oldest go when a new one starts
    max_total_bytes: int | None = None  # and/or a disk budget for all of them (None: no budget)


@dataclass(frozen=True)
class AppConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)


def load_config(path: Path | None = None) -> AppConfig:
    """Read a YAML config (or the defaults when path is None); unknown keys and bad values raise ConfigError."""
    if path is None:
        return check_config(AppConfig())
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read config {path}: {exc}") from exc
    return check_config(build_dataclass(AppConfig, raw, ""))


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SMALL_EVENT_THREADS = 8  # worker threads kept for Stop, refresh, uploads while generation is at its bound
POSITIVE = ("server.max_queue", "server.concurrency", "server.cache_sweep_s", "server.cache_max_age_s",
            "server.max_threads", "server.max_in_flight", "server.max_sessions", "server.max_in_flight_per_client",
            "limits.max_compare_prompt_tokens",
            "limits.max_new_tokens", "limits.max_prompt_chars", "limits.max_upload_bytes", "finetune.keep_runs")


def check_config(cfg: AppConfig) -> AppConfig:
    """cfg if every value is usable, else ConfigError naming the key."""
    if cfg.server.log_level.upper() not in LOG_LEVELS:
        raise ConfigError(f"'server.log_level' must be one of {', '.join(LOG_LEVELS)}, got {cfg.server.log_level!r}.")
    for key in POSITIVE:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value < 1:
            raise ConfigError(f"'{key}' must be at least 1, got {value!r}.")
    server = cfg.server
    for name in ("malloc_arena_max", "malloc_trim_s"):  # 0 switches the setting off
        if getattr(server, name) < 0:
            raise ConfigError(f"'server.{name}' must be 0 (off) or more, got {getattr(server, name)!r}.")
    if server.max_in_flight + 1 + server.heavy_waiting + SMALL_EVENT_THREADS > server.max_threads:
        raise ConfigError(f"'server.max_in_flight' + 1 + 'server.heavy_waiting' must leave {SMALL_EVENT_THREADS} of "
                          f"'server.max_threads' ({server.max_threads}) free, or the busy message cannot fire.")
    return cfg


def build_dataclass(cls: type[T], raw: Any, where: str) -> T:
    """Build a (nested) frozen dataclass from plain YAML data, checking keys and types."""
    if not isinstance(raw, dict):
        raise ConfigError(f"'{where or 'config'}' must be a mapping, got {type(raw).__name__}.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"Unknown config key '{_join(where, unknown[0])}'. Known: {', '.join(sorted(names))}.")
    values = {k: _convert(hints[k], v, _join(where, k)) for k, v in raw.items()}
    required = [f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in raw]
    if missing:
        raise ConfigError(f"'{where or 'config'}' needs the key '{missing[0]}'.")
    return cls(**values)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _convert(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, where)  # type: ignore[arg-type]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        return _convert(next(a for a in args if a is not type(None)), value, where)
    if origin in (dict, list, tuple):
        if not isinstance(value, origin if origin is not tuple else (list, tuple)):
            raise ConfigError(f"'{where}' must be a {origin.__name__}.")
        item = typing.get_args(hint)[0] if origin is not dict and typing.get_args(hint) else None
        if item is not None and dataclasses.is_dataclass(item):
            value = [build_dataclass(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(value) if origin is tuple else value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
        raise ConfigError(f"'{where}' must be {hint.__name__}, got {value!r}.")
    return value
