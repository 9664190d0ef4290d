"""compare_caption_precisions(): the same images captioned at several precisions, side by side with full precision."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from core.errors import EmptyInputError, PlaygroundError
from core.generation.batch_caption import DEFAULT_BATCH_SIZE, caption_batch
from core.generation.sampling import SamplingParams
from core.generation.vision import CaptionStyle
from core.models.hardware import Precision, parse_precision
from core.quant.comparison import ModelSource

GREEDY = SamplingParams(max_new_tokens=64, temperature=0.0, repetition_penalty=1.0)  # comparable across precisions


@dataclass(frozen=True)
class CaptionColumn:
    """One precision's captions of every image, with its speed and its agreement with full precision."""

    precision: Precision
    captions: tuple[str, ...] = ()
    seconds: float = 0.0  # wall time of all its batches (loading excluded)
    agreement: float | None = None  # share of captions equal to full precision's; None for full precision itself
    error: str = ""  # why this precision has no captions (not offered, out of memory, ...)

    @property
    def images_per_s(self) -> float:
        return len(self.captions) / self.seconds if self.seconds > 0 else 0.0


def compare_caption_precisions(models: ModelSource, model_id: str, precisions: Sequence[Precision | str],
                               images: Sequence[Image.Image], style: CaptionStyle = "short",
                               params: SamplingParams = GREEDY,
                               batch_size: int = DEFAULT_BATCH_SIZE) -> list[CaptionColumn]:
    """Full precision first, then each other precision: captions, images/s, agreement; a failed one says why."""
    if not images:
        raise EmptyInputError("Add images to compare the captions of each precision.")
    full = models.hardware.full_precision
    chosen = [full, *(p for p in dict.fromkeys(map(parse_precision, precisions)) if p != full)]
    columns: list[CaptionColumn] = []
    for precision in chosen:
        column = _caption_column(models, model_id, precision, images, style, params, batch_size)
        if columns and not column.error and not columns[0].error:
            same = sum(same_caption(a, b) for a, b in zip(columns[0].captions, column.captions, strict=True))
            column = CaptionColumn(precision, column.captions, column.seconds, same / len(images))
        columns.append(column)
    return columns


def _caption_column(models: ModelSource, model_id: str, precision: Precision, images: Sequence[Image.Image],
                    style: CaptionStyle, params: SamplingParams, batch_size: int) -> CaptionColumn:
    try:
        loaded = models.get(model_id, precision)
        captions: list[str] = []
        began = time.perf_counter()
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            captions += [text for text, _ in caption_batch(loaded, chunk, style, params, threading.Event())]
        return CaptionColumn(precision, tuple(captions), time.perf_counter() - began)
    except PlaygroundError as exc:
        return CaptionColumn(precision, error=str(exc))


def same_caption(a: str, b: str) -> bool:
    """Whether two captions agree (case and spacing aside): what the agreement share counts."""
    return " ".join(a.lower().split()) == " ".join(b.lower().split())
