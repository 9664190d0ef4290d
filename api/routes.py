"""The OpenAI-compatible routes (/v1/models, /v1/chat/completions, /v1/completions) beside Gradio.

Handlers are thin: JSON -> api.requests -> the Service (in worker threads) -> api.responses -> JSON or SSE. Every
refusal is OpenAI's error object with its status; nothing unexpected reaches a client as a stack trace.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from api.answer import Answer, open_answer
from api.errors import ApiError, bad_request, from_playground, internal_error
from api.models import model_list
from api.requests import ChatCall, parse_chat, parse_completion
from api.responses import Envelope, TextEnvelope
from core.config import AppConfig, LimitsConfig
from core.errors import PlaygroundError
from core.serving.service import Service

API_KEY_ENV = "PLAYGROUND_API_KEY"
DISCONNECT_POLL_S = 0.25  # how often a non-streamed request checks that its client is still there
log = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]
Parser = Callable[[Any, LimitsConfig], ChatCall]


def api_key(cfg: AppConfig) -> str:
    """The bearer key /v1 requires: server.api_key, else $PLAYGROUND_API_KEY, else none ("")."""
    return cfg.server.api_key or os.environ.get(API_KEY_ENV, "")


def max_body_bytes(cfg: AppConfig) -> int:
    """The largest request body read: one image as base64 plus the longest accepted text, JSON-escaped."""
    return cfg.limits.max_image_bytes * 4 // 3 + cfg.limits.max_prompt_chars * 6 + 65_536


def build_router(service: Service, cfg: AppConfig) -> APIRouter:
    """The /v1 routes calling this Service."""
    router = APIRouter(prefix="/v1")
    full = service.registry.hardware.full_precision.value

    def guarded(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            try:
                authorize(request, api_key(cfg))  # read per request: a new key needs no restart
                return await handler(request)
            except ApiError as exc:
                return error_response(exc)
            except PlaygroundError as exc:
                return error_response(from_playground(exc))
            except Exception:  # logged here, never shown to the client
                log.exception("/v1 request failed")
                return error_response(internal_error())
        return run

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": model_list(service.registry)})

    async def one_model(request: Request) -> Response:
        wanted = request.path_params["model_id"]
        for card in model_list(service.registry):
            if card["id"] == wanted:
                return JSONResponse(card)
        raise ApiError(404, f"The model '{wanted}' does not exist here; GET /v1/models lists the ids.",
                       code="model_not_found", param="model")

    async def complete(request: Request, parse: Parser, envelope_type: type[Envelope]) -> Response:
        body = await read_json(request, max_body_bytes(cfg))
        call = await anyio.to_thread.run_sync(parse, body, cfg.limits)  # images decode off the event loop
        rate = cfg.server.stream_updates_per_s if call.stream else 0.0
        answer = await anyio.to_thread.run_sync(open_answer, service, call, call.precision or full, rate)
        envelope = envelope_type(call.model)
        if call.stream:
            return StreamingResponse(sse(answer, envelope), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        try:
            text = await whole_text(answer, request)
        finally:
            await anyio.to_thread.run_sync(answer.close)
        return JSONResponse(envelope.completion(text, answer.finish_reason, answer.usage))

    async def chat_completions(request: Request) -> Response:
        return await complete(request, parse_chat, Envelope)

    async def completions(request: Request) -> Response:
        return await complete(request, parse_completion, TextEnvelope)

    async def unknown(request: Request) -> Response:
        raise ApiError(404, f"No route {request.method} {request.url.path}: this server offers GET /v1/models, "
                            "POST /v1/chat/completions and POST /v1/completions.", code="unknown_url")

    router.add_api_route("/models", guarded(models), methods=["GET"])
    router.add_api_route("/models/{model_id:path}", guarded(one_model), methods=["GET"])
    router.add_api_route("/chat/completions", guarded(chat_completions), methods=["POST"])
    router.add_api_route("/completions", guarded(completions), methods=["POST"])
    router.add_api_route("/{path:path}", guarded(unknown), methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    return router


def authorize(request: Request, key: str) -> None:
    """401 unless the request carries `Authorization: Bearer <key>` (when a key is set)."""
    if not key:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), key.encode()):
        raise ApiError(401, "Missing or incorrect API key: send 'Authorization: Bearer <key>'.",
                       code="invalid_api_key")


async def read_json(request: Request, max_bytes: int) -> Any:
    """The parsed body; 413 past max_bytes (counted while reading, never buffered whole), 400 if not JSON."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, f"The request body is {int(declared):,} bytes; at most {max_bytes:,} are accepted.",
                       code="request_too_large")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > max_bytes:
            raise ApiError(413, f"The request body is over {max_bytes:,} bytes.", code="request_too_large")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"The request body is not valid JSON ({exc}).") from None


async def whole_text(answer: Answer, request: Request) -> str:
    """The whole answer of a non-streamed request; a client that disconnects meanwhile stops the model."""
    text, failure = "", None
    async with anyio.create_task_group() as group:
        async def watch() -> None:
            while not await request.is_disconnected():
                await anyio.sleep(DISCONNECT_POLL_S)
            answer.stop.set()  # the model stops at its next step; the text read so far ends the join below

        group.start_soon(watch)
        try:
            text = await anyio.to_thread.run_sync(lambda: "".join(answer.pieces()))
        except Exception as exc:  # re-raised below as itself: out of a task group it would be an ExceptionGroup
            failure = exc
        group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return text


async def sse(answer: Answer, envelope: Envelope) -> AsyncIterator[str]:
    """Server-sent events: a role chunk (chat), paced text chunks, the finish chunk, usage if asked, [DONE].

    A client that disconnects cancels this generator; `finally` then stops the model and frees its batch row.
    """
    usage = answer.call.include_usage
    pieces = answer.pieces()
    try:
        for chunk in envelope.opening(with_usage=usage):
            yield event_line(chunk)
        while (text := await anyio.to_thread.run_sync(next, pieces, None)) is not None:
            yield event_line(envelope.text_chunk(text, with_usage=usage))
        yield event_line(envelope.finish_chunk(answer.finish_reason, with_usage=usage))
        if usage:
            yield event_line(envelope.usage_chunk(answer.usage))
        yield "data: [DONE]\n\n"
    except PlaygroundError as exc:  # after the status was sent: the SDKs raise on an error event
        yield event_line(from_playground(exc).body())
    except Exception:
        log.exception("/v1 stream failed")
        yield event_line(internal_error().body())
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(answer.close)
            await anyio.to_thread.run_sync(pieces.close)


def event_line(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)
