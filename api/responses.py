"""The Service's answer -> OpenAI JSON (chat and text completions): stream chunks or one object, usage, finish_reason.

Plain functions over dicts (no web framework), so a client of the same protocol can share them.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from core.generation.stream import GenerationStats

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class Envelope:
    """What every chunk of one answer repeats: its id, creation time and model."""

    model: str
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    def chunk(self, delta: dict[str, Any], finish_reason: FinishReason | None = None,
              usage: dict[str, int] | None = None, with_usage: bool = False) -> dict[str, Any]:
        """One chat.completion.chunk; `usage: null` is included when the client asked for usage at the end."""
        out = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
        if with_usage:
            out["usage"] = usage
        return out

    def usage_chunk(self, usage: dict[str, int]) -> dict[str, Any]:
        """The last chunk with stream_options.include_usage: no choices, the usage."""
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [], "usage": usage}

    def completion(self, text: str, finish_reason: FinishReason, usage: dict[str, int]) -> dict[str, Any]:
        """The whole answer as one chat.completion."""
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish_reason}],
                "usage": usage}

    def opening(self, with_usage: bool = False) -> list[dict[str, Any]]:
        """The chunks a stream starts with, before any text: the assistant's role."""
        return [self.chunk({"role": "assistant", "content": ""}, with_usage=with_usage)]

    def text_chunk(self, text: str, with_usage: bool = False) -> dict[str, Any]:
        """One chunk of answer text."""
        return self.chunk({"content": text}, with_usage=with_usage)

    def finish_chunk(self, finish_reason: FinishReason, with_usage: bool = False) -> dict[str, Any]:
        """The chunk that ends the choice."""
        return self.chunk({}, finish_reason, with_usage=with_usage)


@dataclass(frozen=True)
class TextEnvelope(Envelope):
    """The same for /v1/completions: text_completion objects, whose choices carry `text` instead of a message."""

    id: str = field(default_factory=lambda: f"cmpl-{uuid.uuid4().hex}")

    def _text(self, text: str, finish_reason: FinishReason | None, usage: dict[str, int] | None,
              with_usage: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "object": "text_completion", "created": self.created,
                               "model": self.model,
                               "choices": [{"index": 0, "text": text, "logprobs": None,
                                            "finish_reason": finish_reason}]}
        if with_usage:
            out["usage"] = usage
        return out

    def usage_chunk(self, usage: dict[str, int]) -> dict[str, Any]:
        """The last chunk with stream_options.include_usage: no choices, the usage."""
        return {**super().usage_chunk(usage), "object": "text_completion"}

    def completion(self, text: str, finish_reason: FinishReason, usage: dict[str, int]) -> dict[str, Any]:
        """The whole continuation as one text_completion."""
        return self._text(text, finish_reason, usage, with_usage=True)

    def opening(self, with_usage: bool = False) -> list[dict[str, Any]]:
        """No role chunk: a completion stream starts with its text."""
        return []

    def text_chunk(self, text: str, with_usage: bool = False) -> dict[str, Any]:
        """One chunk of the continuation."""
        return self._text(text, None, None, with_usage)

    def finish_chunk(self, finish_reason: FinishReason, with_usage: bool = False) -> dict[str, Any]:
        """The chunk that ends the choice (empty text)."""
        return self._text("", finish_reason, None, with_usage)


def usage_of(stats: GenerationStats | None) -> dict[str, int]:
    """OpenAI's usage object from the answer's measurements (image tokens count as prompt tokens)."""
    prompt, completion = (stats.prompt_tokens, stats.new_tokens) if stats else (0, 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def finish_reason_of(stats: GenerationStats | None, max_tokens: int, stop_hit: bool) -> FinishReason:
    """'length' when the token limit ended the answer, else 'stop' (end of sequence or a stop string)."""
    if stop_hit or stats is None:
        return "stop"
    return "length" if stats.new_tokens >= max_tokens else "stop"


class StopStrings:
    """OpenAI's `stop`: text is released only once it cannot be the start of a stop string; the match ends it."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.hold = max((len(s) for s in stops), default=1) - 1  # the most characters a partial match can take
        self.text = ""
        self.sent = 0  # characters of self.text already released
        self.hit = False

    def feed(self, delta: str) -> str:
        """The text that may be sent now, after this delta ("" once a stop string matched)."""
        if self.hit:
            return ""
        self.text += delta
        start = max(0, self.sent - self.hold)
        found = [i for i in (self.text.find(s, start) for s in self.stops) if i >= 0]
        if found:
            self.hit = True
            return self._release(min(found))
        return self._release(len(self.text) - self._open_tail())

    def flush(self) -> str:
        """What is left once the answer ended without a stop string."""
        return "" if self.hit else self._release(len(self.text))

    def _open_tail(self) -> int:
        """Characters at the end of the text that could still grow into a stop string."""
        for size in range(min(self.hold, len(self.text)), 0, -1):
            tail = self.text[-size:]
            if any(s.startswith(tail) for s in self.stops):
                return size
        return 0

    def _release(self, end: int) -> str:
        out, self.sent = self.text[self.sent:end], max(self.sent, end)
        return out
