"""Captions and visual chat: an image plus a conversation about it -> the same TextStream as text chat."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

import torch
from PIL import Image

from core.errors import BadSettingError, InputTooLongError
from core.generation.prompting import ChatTurn, ContextPlan, check_chars, check_texts, check_turns
from core.generation.sampling import SamplingParams
from core.generation.stream import TextStream
from core.generation.user_text import Escaper, special_strings
from core.models.loading import LoadedModel

CaptionStyle = Literal["short", "detailed"]
# The bundled model was trained on exactly these prompts (scripts/shapes.py CAPTION_PROMPTS).
STYLE_PROMPTS: dict[str, str] = {"short": "Caption this image.", "detailed": "Describe this image."}


@dataclass(frozen=True)
class AttachedImage:
    """An image a later user turn brought into the conversation."""

    user_turn: int  # which user turn (0 = the first; len(user turns in history) = the new question)
    image: Image.Image  # RGB, as core.images.load_image returns it


@dataclass(frozen=True)
class VisionRequest:
    """One image and a conversation about it; an empty question asks for a caption in `style`."""

    image: Image.Image  # RGB, as core.images.load_image returns it
    question: str = ""
    style: CaptionStyle = "short"
    history: tuple[ChatTurn, ...] = ()  # earlier turns about this image; the image belongs to the first user turn
    system: str = ""
    attached: tuple[AttachedImage, ...] = ()  # images that follow-ups attached, in turn order

    @property
    def image_count(self) -> int:
        """Images in the conversation (the first one and every attached one)."""
        return 1 + len(self.attached)

    @property
    def prompt(self) -> str:
        """The user's new turn: the question, or the style's caption prompt."""
        if self.style not in STYLE_PROMPTS:
            raise BadSettingError(f"Unknown caption style '{self.style}'. Choose one of: {', '.join(STYLE_PROMPTS)}.")
        return self.question.strip() or STYLE_PROMPTS[self.style]

    def text_chars(self) -> int:
        """Characters of text in the request (the image not counted)."""
        return len(self.question) + len(self.system) + sum(len(t.content) for t in self.history)

    def check_size(self, max_chars: int) -> None:
        """Refuse text that is not text (wrong type, not encodable) or so large that tokenizing it would stall."""
        check_texts({"question": self.question, "system prompt": self.system, "style": self.style})
        check_turns(self.history)
        users = sum(t.role == "user" for t in self.history)
        if any(not 1 <= a.user_turn <= users for a in self.attached):
            raise BadSettingError(f"An attached image must belong to a follow-up (user turns 1 to {users}).")
        if self.style not in STYLE_PROMPTS:
            raise BadSettingError(f"Unknown caption style '{self.style}'. Choose one of: {', '.join(STYLE_PROMPTS)}.")
        check_chars(self.text_chars(), max_chars)


def vision_messages(request: VisionRequest, history: list[ChatTurn]) -> list[dict[str, Any]]:
    """Processor chat messages: system, history, the new question; the image in the first user turn."""
    messages: list[dict[str, Any]] = []
    if request.system.strip():
        messages.append({"role": "system", "content": [{"type": "text", "text": request.system}]})
    turns = [*history, ChatTurn("user", request.prompt)]
    per_turn = _images_per_turn(request, history)
    user = 0
    for turn in turns:
        images = [{"type": "image"}] * (len(per_turn[user]) if turn.role == "user" else 0)
        user += turn.role == "user"
        messages.append({"role": turn.role, "content": [*images, {"type": "text", "text": turn.content}]})
    return messages


def conversation_images(request: VisionRequest, history: list[ChatTurn]) -> list[Image.Image]:
    """The images of the kept turns in prompt order: the first image, then those that kept follow-ups attached."""
    return [image for images in _images_per_turn(request, history) for image in images]


def _images_per_turn(request: VisionRequest, history: list[ChatTurn]) -> list[list[Image.Image]]:
    """Images per kept user turn: the first image moves to the earliest kept turn; a dropped turn's attachment goes."""
    users = sum(t.role == "user" for t in history) + 1
    dropped = sum(t.role == "user" for t in request.history) + 1 - users  # user turns trimmed from the front
    per_turn: list[list[Image.Image]] = [[] for _ in range(users)]
    per_turn[0].append(request.image)
    for attached in request.attached:
        if attached.user_turn >= dropped and attached.user_turn - dropped < users:
            per_turn[attached.user_turn - dropped].append(attached.image)
    return per_turn


def plan_vision(loaded: LoadedModel, request: VisionRequest, window: int,
                max_new_tokens: int) -> tuple[ContextPlan, dict[str, torch.Tensor]]:
    """Processor inputs (ids + pixels) that fit the window, dropping the oldest follow-ups first."""
    processor = processor_of(loaded)
    budget = window - max_new_tokens
    if budget <= 0:
        raise InputTooLongError(
            f"Max new tokens ({max_new_tokens:,}) leaves no room for a prompt in the {window:,}-token window.")
    history = list(request.history)
    while history and history[0].role != "user":  # a conversation starts with the user
        history = history[1:]
    inputs = _encode(processor, request, history)
    while inputs["input_ids"].shape[-1] > budget and history:
        history = history[2:]  # the image moves on to the earliest remaining user turn
        inputs = _encode(processor, request, history)
    prompt_tokens = int(inputs["input_ids"].shape[-1])
    if prompt_tokens > budget:
        raise InputTooLongError(
            f"The image and question take {prompt_tokens:,} tokens; with {max_new_tokens:,} kept for the answer, "
            f"this model's window of {window:,} tokens cannot hold them. Shorten the question or lower max new tokens.")
    ids = inputs["input_ids"][0].tolist()
    return ContextPlan(ids, window, max_new_tokens, len(request.history) - len(history)), inputs


def prepare_vision(loaded: LoadedModel, request: VisionRequest, params: SamplingParams,
                   max_context_tokens: int | None = None) -> tuple[ContextPlan, dict[str, torch.Tensor]]:
    """Plan the prompt (oldest follow-ups dropped to fit): the plan and the model inputs, pixels included."""
    window = min(loaded.context_window, max_context_tokens or loaded.context_window)
    plan, inputs = plan_vision(loaded, request, window, params.max_new_tokens)
    dtype = pixel_dtype(loaded.model)  # pixels (and the hybrid model's high-res pixels) in the model's dtype
    return plan, {k: v.to(loaded.device, dtype) if v.is_floating_point() else v.to(loaded.device)
                  for k, v in inputs.items()}


def stream_caption(loaded: LoadedModel, request: VisionRequest, params: SamplingParams, stop: threading.Event,
                   timeout_s: float = 600.0, max_context_tokens: int | None = None) -> TextStream:
    """Caption the image or answer a question about it: a stream of text deltas with .stats at the end."""
    plan, inputs = prepare_vision(loaded, request, params, max_context_tokens)
    return TextStream(loaded, inputs, params, stop, timeout_s, plan)


def _encode(processor: Any, request: VisionRequest, history: list[ChatTurn]) -> dict[str, torch.Tensor]:
    """Processor inputs with user text kept as text: a typed `<image_placeholder>` is not an image slot."""
    escaper = Escaper(processor.tokenizer, special_strings_of(processor))
    messages = vision_messages(request, history)
    for message in messages:
        message["content"] = [{**c, "text": escaper.escape(c["text"])} if c["type"] == "text" else c
                              for c in message["content"]]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    text = text.replace(processor.image_token, processor.image_token * processor.num_image_tokens)
    ids = torch.tensor([escaper.encode(text, add_special_tokens=True)], dtype=torch.long)  # BOS as the processor
    pixels = processor.image_processor(images=conversation_images(request, history), return_tensors="pt")
    tensors = {k: v for k, v in pixels.items() if isinstance(v, torch.Tensor)}
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), **tensors}


def special_strings_of(processor: Any) -> list[str]:
    """The tokenizer's special strings plus the processor's image token."""
    return sorted({*special_strings(processor.tokenizer), processor.image_token}, key=len, reverse=True)


def processor_of(loaded: LoadedModel) -> Any:
    """The model's processor, or BadSettingError when it is a text model."""
    if loaded.entry.kind != "vision" or loaded.processor is None:
        raise BadSettingError(f"{loaded.key.model_id} is a text model and cannot see images; pick a vision model.")
    return loaded.processor


def pixel_dtype(model: Any) -> torch.dtype:
    """The dtype pixels must have: the model's floating weights (quantized layers keep a float compute dtype)."""
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    return torch.float32

