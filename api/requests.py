"""OpenAI (chat) completions JSON -> the Service's request and sampling settings (plain dicts in, no web framework).

Reusable by any client or server that speaks the protocol: parse_chat() and parse_completion() are the whole
translation, and each refusal is an ApiError naming the field (`param`) that caused it.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.errors import ApiError, bad_request
from core.config import LimitsConfig
from core.generation.images import load_image_bytes
from core.generation.prompting import ChatRequest, ChatTurn, PromptRequest
from core.generation.sampling import SamplingParams
from core.generation.vision import VisionRequest

DEFAULT_MAX_TOKENS = 256  # when a request names no max_tokens (the chat tab's default)
MAX_STOP_STRINGS = 4  # as OpenAI
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
REFUSED_FIELDS = {  # accepted by OpenAI, not by this server: refused by name rather than ignored
    "tools": "Tool calling is not supported by this server.",
    "functions": "Function calling is not supported by this server.",
    "logit_bias": "logit_bias is not supported by this server.",
    "audio": "Audio output is not supported by this server.",
}


@dataclass(frozen=True)
class ChatCall:
    """One parsed /v1/chat/completions body (or /v1/completions: a PromptRequest)."""

    model: str
    precision: str  # "" = the hardware's full precision
    request: ChatRequest | VisionRequest | PromptRequest
    params: SamplingParams
    stop: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False


def parse_chat(body: Any, limits: LimitsConfig) -> ChatCall:
    """The Service call a chat-completions body asks for; ApiError (400/413) for anything it cannot take."""
    return _parse_call(body, limits, lambda: parse_messages(body.get("messages"), limits))


def parse_completion(body: Any, limits: LimitsConfig) -> ChatCall:
    """The Service call a /v1/completions body asks for: one plain prompt, continued as written (no template)."""
    return _parse_call(body, limits, lambda: PromptRequest(parse_prompt(body)))


def _parse_call(body: Any, limits: LimitsConfig,
                request_of: Callable[[], ChatRequest | VisionRequest | PromptRequest]) -> ChatCall:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required: one of the ids GET /v1/models lists.", "model")
    refuse_unsupported(body)
    stream = _flag(body, "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object.", "stream_options")
    request = request_of()
    precision = body.get("precision") or ""
    if not isinstance(precision, str):
        raise bad_request("'precision' must be a string such as 'fp32' or 'int8'.", "precision")
    return ChatCall(model, precision, request, parse_sampling(body, limits), parse_stop(body.get("stop")),
                    stream, stream and _flag(options, "include_usage"))


def parse_prompt(body: dict[str, Any]) -> str:
    """The one prompt of a completions body (a string, or a list holding one string); its other fields refused."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise bad_request("'prompt' must be one string (token-id prompts and several prompts per request are not "
                          "supported: send one request per prompt).", "prompt")
    if body.get("echo"):
        raise bad_request("echo is not supported by this server.", "echo")
    if body.get("suffix"):
        raise bad_request("suffix (insertion) is not supported by this server.", "suffix")
    best_of = body.get("best_of")
    if best_of is not None and best_of != 1:
        raise bad_request("Only best_of=1 is supported.", "best_of")
    return prompt


def refuse_unsupported(body: dict[str, Any]) -> None:
    """Settings this server cannot honour get a 400 naming them, never a silent ignore."""
    for name, message in REFUSED_FIELDS.items():
        if body.get(name):
            raise bad_request(message, name)
    n = body.get("n")
    if n is not None and n != 1:
        raise bad_request("Only n=1 is supported: send one request per answer.", "n")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise bad_request("logprobs are not supported by this server.", "logprobs")
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") != "text"):
        raise bad_request("Only response_format {'type': 'text'} is supported.", "response_format")
    for name in ("frequency_penalty", "presence_penalty"):
        value = body.get(name)
        if value is not None and value != 0:
            raise bad_request(f"{name} is not supported (additive penalties): use repetition_penalty "
                              "(multiplicative, 1.0 = off), an extension this server accepts.", name)


def parse_messages(messages: Any, limits: LimitsConfig) -> ChatRequest | VisionRequest:
    """System, history and the last user turn; a VisionRequest when a user message carries an image."""
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list of {role, content} objects.", "messages")
    system: list[str] = []
    turns: list[ChatTurn] = []
    images: list[str] = []
    for i, message in enumerate(messages):
        role, text, urls = _parse_message(message, i)
        if urls and role != "user":
            raise bad_request("Images are accepted in user messages only.", f"messages[{i}].content")
        images += urls
        if role == "system":
            system.append(text)
        else:
            turns.append(ChatTurn(role, text))  # type: ignore[arg-type]
    if not turns or turns[-1].role != "user":
        raise bad_request("The last message must come from the user.", "messages")
    if len(images) > 1:
        raise bad_request("One image per conversation is supported.", "messages")
    history, last = tuple(turns[:-1]), turns[-1].content
    if images:
        image = decode_image_url(images[0], limits)
        return VisionRequest(image, question=last, history=history, system="\n\n".join(system))
    return ChatRequest(last, history, "\n\n".join(system))


def _parse_message(message: Any, i: int) -> tuple[str, str, list[str]]:
    """(role, text, image urls) of one message."""
    if not isinstance(message, dict):
        raise bad_request(f"messages[{i}] must be an object with 'role' and 'content'.", f"messages[{i}]")
    role = message.get("role")
    if role in ("tool", "function"):
        raise bad_request(f"messages[{i}]: role '{role}' is not supported (no tool calling).", f"messages[{i}].role")
    if role not in ROLES:
        raise bad_request(f"messages[{i}]: unknown role {role!r}; use system, developer, user or assistant.",
                          f"messages[{i}].role")
    content = message.get("content")
    if content is None and role == "assistant":
        content = ""
    if isinstance(content, str):
        return ROLES[role], content, []
    if not isinstance(content, list):
        raise bad_request(f"messages[{i}].content must be a string or a list of content parts.",
                          f"messages[{i}].content")
    texts, urls = [], []
    for j, part in enumerate(content):
        where = f"messages[{i}].content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            if not isinstance(url, str):
                raise bad_request(f"{where}: image_url needs a 'url' string.", where)
            urls.append(url)
        else:
            raise bad_request(f"{where}: unsupported content part type {kind!r}; use 'text' or 'image_url'.", where)
    return ROLES[role], "\n".join(texts), urls


def decode_image_url(url: str, limits: LimitsConfig) -> Any:
    """A data: URI -> a checked RGB image (core.generation.images); http(s) URLs are refused: no fetching here."""
    if url.startswith(("http://", "https://")):
        raise bad_request("Image URLs are not fetched by this server (it may run offline): send the image as a "
                          "data: URI, e.g. data:image/png;base64,....", "messages")
    header, _, payload = url.partition(",")
    if not header.startswith("data:") or not header.endswith(";base64") or not payload:
        raise bad_request("image_url must be a base64 data: URI (data:image/png;base64,...).", "messages")
    if len(payload) * 3 // 4 > limits.max_image_bytes:
        raise ApiError(413, f"The image is about {len(payload) * 3 / 4e6:.1f} MB; images up to "
                            f"{limits.max_image_bytes / 1e6:.0f} MB are accepted.", code="image_too_large",
                       param="messages")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("The image's data: URI is not valid base64.", "messages") from None
    return load_image_bytes(data, limits).image


def parse_sampling(body: dict[str, Any], limits: LimitsConfig) -> SamplingParams:
    """max_tokens / max_completion_tokens, temperature, top_p, seed and the top_k / repetition_penalty extensions."""
    limit = limits.max_new_tokens
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _integer(body, name, DEFAULT_MAX_TOKENS)
    if not 1 <= max_tokens <= limit:
        raise bad_request(f"{name} must be between 1 and {limit:,}; got {max_tokens:,}.", name)
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    if top_p == 0:
        raise bad_request("top_p must be above 0 and at most 1.", "top_p")
    repetition = _number(body, "repetition_penalty", 1.0, 0.5, 3.0)
    top_k = _integer(body, "top_k", 0)
    if top_k < 0:
        raise bad_request("top_k must be 0 (off) or more.", "top_k")
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise bad_request("seed must be a non-negative integer.", "seed")
    return SamplingParams(max_tokens, temperature, top_p, top_k, repetition, seed)


def parse_stop(stop: Any) -> tuple[str, ...]:
    """OpenAI's `stop`: a string or up to 4 strings."""
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise bad_request("stop must be a non-empty string or a list of non-empty strings.", "stop")
    if len(stops) > MAX_STOP_STRINGS:
        raise bad_request(f"At most {MAX_STOP_STRINGS} stop strings are accepted.", "stop")
    return tuple(stops)


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"'{name}' must be true or false.", name)
    return value


def _integer(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{name} must be an integer; got {value!r}.", name)
    return value


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise bad_request(f"{name} must be a number from {low:g} to {high:g}; got {value!r}.", name)
    return float(value)
