"""The Chatbot's value read as exchanges: turns for the model, the last exchange, document chips."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import takewhile
from typing import Any

from core.generation.prompting import ChatTurn
from ui.controls import is_metrics, text_of

CHIP = "📄"


@dataclass(frozen=True)
class Turn:
    """One exchange found in the Chatbot's value: what came before, the message, its document, the answer."""

    before: list[dict[str, Any]]
    text: str
    document: str = ""
    answer: str = ""


def turn_at(history: list[dict[str, Any]], index: int, text: str | None = None) -> Turn:
    """The exchange whose user message is history[index] (a document chip just before it belongs to it)."""
    start = index - 1 if index > 0 and is_chip(history[index - 1]) else index
    replies = list(takewhile(lambda m: m["role"] == "assistant", history[index + 1:]))
    answer = "".join(text_of(m["content"]) for m in replies if not is_metrics(m))
    document = text_of(history[start]["content"]) if start < index else ""
    return Turn(history[:start], text_of(history[index]["content"]) if text is None else text, document, answer)


def last_turn(history: list[dict[str, Any]]) -> Turn | None:
    """The last exchange, or None before the first message."""
    last_user = max((i for i, m in enumerate(history) if m["role"] == "user" and not is_chip(m)), default=None)
    return None if last_user is None else turn_at(history, last_user)


def pending_note(document: str) -> str:
    """The line under the input while a document waits for the next message."""
    if not (document or "").strip():
        return ""
    return f"{CHIP} Document attached ({len(document):,} characters): it goes with your next message."


def document_chip(document: str, tokens: int | None = None) -> dict[str, Any]:
    """A document as sent with one message: folded, its size in the title, the text inside."""
    size = f"{tokens:,} tokens" if tokens is not None else f"{len(document):,} characters"
    return {"role": "user", "content": document, "metadata": {"title": f"{CHIP} Document · {size}", "status": "done"}}


def is_chip(message: dict[str, Any]) -> bool:
    return message["role"] == "user" and str((message.get("metadata") or {}).get("title", "")).startswith(CHIP)


def to_turns(history: list[dict[str, Any]]) -> tuple[ChatTurn, ...]:
    """Chatbot messages -> model turns (metric lines dropped, content flattened)."""
    return tuple(ChatTurn(m["role"], text_of(m["content"])) for m in history
                 if m["role"] in ("user", "assistant") and not is_metrics(m))
