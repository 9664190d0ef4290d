"""The typed events a Service streams for one answer (local or remote alike)."""

from __future__ import annotations

from dataclasses import dataclass

from core.generation.stream import GenerationStats


@dataclass(frozen=True)
class ContextMeter:
    """Sent once, before the first token: how much of the window the prompt takes and what was trimmed."""

    summary: str
    prompt_tokens: int
    window: int


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Notice:
    """Something the user should know about this answer (e.g. it was cut to fit a ZeroGPU slot)."""

    text: str


@dataclass(frozen=True)
class Finished:
    """Sent once, last."""

    stats: GenerationStats
    backend: str


ServiceEvent = ContextMeter | TextDelta | Notice | Finished  # small and picklable: may cross ZeroGPU's process
