"""The typed events a Service streams for one answer (local or remote alike)."""

from __future__ import annotations

from dataclasses import dataclass

from core.generation.batch_caption import CaptionRow
from core.generation.stream import GenerationStats


@dataclass(frozen=True)
class ContextMeter:
    """Sent once, before the first token: how much of the window the prompt takes and what was trimmed."""

    summary: str
    prompt_tokens: int
    window: int
    document_tokens: int = 0  # of the attached document, as sent


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Notice:
    """Something the user should know about this answer (e.g. it was cut to fit a ZeroGPU slot)."""

    text: str


@dataclass(frozen=True)
class Loading:
    """Sent while the model loads (only when it is not in memory yet), every stages.LOAD_TICK_S, and once when ready.

    Load time is reported here, apart from the answer: time to first token starts once the model is loaded.
    """

    stage: str
    elapsed_s: float
    done: bool = False


@dataclass(frozen=True)
class Finished:
    """Sent once, last."""

    stats: GenerationStats
    backend: str


@dataclass(frozen=True)
class CaptionRows:
    """Rows of a batch caption, sent as each batch of images finishes (refused files first)."""

    rows: tuple[CaptionRow, ...]


# small and picklable: may cross ZeroGPU's process
ServiceEvent = Loading | ContextMeter | TextDelta | Notice | Finished | CaptionRows
