"""One log line per request: endpoint, model, precision, prompt and new tokens, milliseconds (in all, and to the
first text where there was one), outcome."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from core.errors import PlaygroundError

logger = logging.getLogger("playground.requests")


class InternalError(PlaygroundError):
    """A bug: the visitor gets this message, the log gets the traceback under the same reference."""


@dataclass
class RequestRecord:
    endpoint: str
    model: str = "-"
    precision: str = "-"
    prompt_tokens: int = 0
    new_tokens: int = 0
    outcome: str = "ok"  # ok | stopped | disconnected | refused <Error>: message | bug <ref>
    started: float = field(default_factory=time.perf_counter)
    first_text_at: float | None = None  # time.perf_counter() when the answer's first text left the Service

    def mark_first_text(self) -> None:
        """Note the time of the first text (later calls change nothing)."""
        if self.first_text_at is None:
            self.first_text_at = time.perf_counter()

    def line(self) -> str:
        """The log line, always one line."""
        ms = (time.perf_counter() - self.started) * 1000
        ttft = "" if self.first_text_at is None else f"ttft_ms={(self.first_text_at - self.started) * 1000:.0f} "
        text = (f"{self.endpoint} model={self.model} precision={self.precision} prompt_tokens={self.prompt_tokens} "
                f"new_tokens={self.new_tokens} ms={ms:.0f} {ttft}outcome={self.outcome}")
        return " ".join(text.split())


@contextmanager
def logged_request(endpoint: str, model: str = "-", precision: str = "-") -> Iterator[RequestRecord]:
    """Log the request when it ends: user errors as one line, bugs with a traceback (re-raised as InternalError)."""
    record = RequestRecord(endpoint, model or "-", precision or "-")
    try:
        yield record
    except PlaygroundError as exc:
        log_refused(record, exc)
        raise
    except GeneratorExit:  # the client went away mid-stream
        record.outcome = "disconnected"
        logger.info(record.line())
        raise
    except Exception as exc:
        ref = secrets.token_hex(4)
        record.outcome = f"bug {ref} {type(exc).__name__}"
        logger.error(record.line(), exc_info=True)
        raise InternalError(f"Something went wrong on the server (reference {ref}); it has been logged.") from exc
    logger.info(record.line())


def log_refused(record: RequestRecord, exc: PlaygroundError) -> None:
    """Log a request refused before it started (bad settings, unknown model): one line."""
    record.outcome = f"refused {type(exc).__name__}: {exc}"
    logger.info(record.line())


def configure_logging(level: str) -> None:
    """Python logging to stderr at `level` (DEBUG, INFO, WARNING, ERROR), one line per record."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
