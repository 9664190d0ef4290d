"""Captions for many images: real batches through one generate each (left-padded prompts, stacked pixels)."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from transformers import StoppingCriteriaList

from core.errors import BadSettingError
from core.generation.sampling import SamplingParams
from core.generation.stream import EventStop, readable_error
from core.generation.vision import CaptionStyle, VisionRequest, pixel_dtype, processor_of, vision_messages
from core.models.loading import LoadedModel

DEFAULT_BATCH_SIZE = 8


@dataclass(frozen=True)
class CaptionItem:
    """One uploaded file: its image, or why it cannot be captioned."""

    name: str
    image: Image.Image | None = None  # RGB, as core.images.load_image returns it
    error: str = ""
    notices: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaptionRow:
    """One line of the results table."""

    name: str
    caption: str = ""
    seconds: float = 0.0  # this image's share of its batch's wall time
    tokens: int = 0  # caption tokens generated (end-of-sequence excluded)
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.name, "caption": self.caption, "seconds": round(self.seconds, 3),
                "tokens": self.tokens, "error": self.error}


@dataclass(frozen=True)
class CaptionBatchRequest:
    """Many images to caption in one style; refused files travel along so their rows keep upload order."""

    items: tuple[CaptionItem, ...]
    style: CaptionStyle = "short"
    batch_size: int = DEFAULT_BATCH_SIZE

    @property
    def image_count(self) -> int:
        return sum(item.image is not None for item in self.items)

    def text_chars(self) -> int:
        return 0  # no user text: each image's prompt is the style's

    def check_size(self, max_chars: int) -> None:
        """Nothing to refuse: the images were checked one by one when they were loaded."""


def rows_to_csv(rows: Sequence[CaptionRow]) -> str:
    """The results table as CSV (file, caption, seconds, tokens, error)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["file", "caption", "seconds", "tokens", "error"])
    writer.writeheader()
    writer.writerows(row.as_dict() for row in rows)
    return buffer.getvalue()


def rows_to_jsonl(rows: Sequence[CaptionRow]) -> str:
    """The results table as JSON Lines, one object per file."""
    return "".join(json.dumps(row.as_dict(), ensure_ascii=False) + "\n" for row in rows)


def caption_batch(loaded: LoadedModel, images: Sequence[Image.Image], style: CaptionStyle, params: SamplingParams,
                  stop: threading.Event) -> list[tuple[str, int]]:
    """(caption, tokens) for each image, from ONE generate over the whole batch."""
    processor = processor_of(loaded)
    messages = vision_messages(VisionRequest(images[0], style=style), [])
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    encoded = processor(images=list(images), text=[prompt] * len(images), return_tensors="pt", padding=True,
                        padding_side="left")  # left: every row's next token lands in the last column
    dtype = pixel_dtype(loaded.model)
    inputs = {k: v.to(loaded.device, dtype) if v.is_floating_point() else v.to(loaded.device)
              for k, v in encoded.items() if isinstance(v, torch.Tensor)}
    pad = processor.tokenizer.pad_token_id
    pad = processor.tokenizer.eos_token_id if pad is None else pad
    try:
        with torch.inference_mode():
            out = loaded.model.generate(**inputs, **params.generate_kwargs(), pad_token_id=pad,
                                        stopping_criteria=StoppingCriteriaList([EventStop(stop)]))
    except Exception as exc:  # out of memory and friends become readable errors
        raise readable_error(exc) from exc
    new = out[:, inputs["input_ids"].shape[1]:]  # (batch, new tokens)
    return [(processor.decode(row, skip_special_tokens=True).strip(), _caption_tokens(row, processor.tokenizer))
            for row in new]


def _caption_tokens(row: torch.Tensor, tokenizer: Any) -> int:
    """Tokens before the first end-of-sequence (rows that finish early are padded with it)."""
    ends = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    for i, token in enumerate(row.tolist()):
        if token in ends:
            return i
    return int(row.numel())


def caption_many(loaded: LoadedModel, items: Sequence[CaptionItem], style: CaptionStyle, params: SamplingParams,
                 stop: threading.Event, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[list[CaptionRow]]:
    """Rows batch by batch, in upload order: refused files at once with their message, the rest as captioned."""
    if not 1 <= batch_size <= 64:
        raise BadSettingError("The batch size must be between 1 and 64.")
    refused = [CaptionRow(i.name, error=i.error) for i in items if i.image is None]
    if refused:
        yield refused
    todo = [i for i in items if i.image is not None]
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        if stop.is_set():
            yield [CaptionRow(i.name, error="Not captioned: stopped.") for i in todo[start:]]
            return
        began = time.perf_counter()
        results = caption_batch(loaded, [i.image for i in chunk], style, params, stop)  # type: ignore[misc]
        share = (time.perf_counter() - began) / len(chunk)
        stopped = " (stopped)" if stop.is_set() else ""
        yield [CaptionRow(i.name, text + stopped if stopped else text, share, tokens, "")
               for i, (text, tokens) in zip(chunk, results, strict=True)]
