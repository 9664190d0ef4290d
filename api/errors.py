"""OpenAI-style errors: every refusal becomes {"error": {message, type, param, code}} with the right HTTP status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.errors import (
    BusyError,
    GenerationError,
    InputTooLongError,
    ModelUnavailableError,
    OutOfMemoryError,
    PlaygroundError,
    UnknownModelError,
)

RETRY_AFTER_S = 2  # what a 429 tells the client to wait before trying again


@dataclass
class ApiError(Exception):
    """A refusal for an API client: the status, OpenAI's error object, and extra headers (Retry-After)."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI's clients parse into their exception classes."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """400: a setting or a message the API cannot take."""
    return ApiError(400, message, param=param, code=code)


def from_playground(exc: PlaygroundError) -> ApiError:
    """The status and error object for an error the Service raised (its message is written for a person)."""
    message = str(exc)
    if isinstance(exc, UnknownModelError | ModelUnavailableError):
        return ApiError(404, message, code="model_not_found", param="model")
    if isinstance(exc, InputTooLongError):
        return ApiError(413, message, code="context_length_exceeded", param="messages")
    if isinstance(exc, BusyError):
        return ApiError(429, message, type="rate_limit_error", code="server_busy",
                        headers={"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, OutOfMemoryError):
        return ApiError(503, message, type="server_error", code="memory_budget")
    if isinstance(exc, GenerationError):
        return ApiError(500, message, type="server_error", code="generation_failed")
    return ApiError(400, message)


def internal_error() -> ApiError:
    """500 for anything unexpected: a short message, never a stack trace."""
    return ApiError(500, "The server failed while answering; the error was logged. Please try again.",
                    type="server_error", code="internal_error")
