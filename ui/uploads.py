"""Bounded uploads: an oversized one is refused from its Content-Length; a refused or broken one leaves no file."""

from __future__ import annotations

import contextlib
import os
from contextvars import ContextVar
from typing import Any

import gradio.route_utils as gradio_route_utils
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file bytes
# The temp files gradio's multipart parser creates while this request is served (None outside an upload).
_created: ContextVar[list[str] | None] = ContextVar("upload_temp_files", default=None)
_gradio_named_temporary_file = gradio_route_utils.NamedTemporaryFile


def _recording_named_temporary_file(*args: Any, **kwargs: Any) -> Any:
    file = _gradio_named_temporary_file(*args, **kwargs)
    created = _created.get()
    if created is not None:
        created.append(file.name)
    return file


# gradio writes each upload to NamedTemporaryFile(delete=False) and removes it only when the size limit is hit:
# a client that disconnects part-way leaves the partial file behind. Recording the names lets the guard remove it.
gradio_route_utils.NamedTemporaryFile = _recording_named_temporary_file


class UploadGuard:
    """ASGI middleware around gradio's upload routes."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].rstrip("/").endswith("/upload"):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes + MULTIPART_SLACK:
            message = f"Upload refused: files up to {self.max_bytes / 1e6:.0f} MB are accepted."
            await PlainTextResponse(message, status_code=413)(scope, receive, send)
            return
        created: list[str] = []
        token = _created.set(created)
        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            _created.reset(token)
            if status != [200]:  # refused, broken or disconnected: nothing of it stays on disk
                remove_files(created)


def remove_files(paths: list[str]) -> None:
    """Delete these files if they are still there."""
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            with contextlib.suppress(ValueError):
                return int(value)
    return None
