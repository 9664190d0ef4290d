"""Widgets shared by the tabs: model/precision pickers, sampling controls, message helpers."""

from __future__ import annotations

import math
import secrets
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import gradio as gr

from core.config import AppConfig
from core.generation.sampling import SamplingParams
from core.models.catalog import CatalogEntry, Kind, source_problem
from core.quant.backends import available_precisions, precision_note, unavailable_precisions
from core.serving.registry import ModelRegistry
from core.serving.remotes import REMOTE_PRECISION, RemoteHub


@dataclass
class SamplingControls:
    temperature: gr.Slider
    top_p: gr.Slider
    top_k: gr.Slider
    repetition_penalty: gr.Slider
    max_new_tokens: gr.Slider
    seed: gr.Number

    @property
    def inputs(self) -> list[gr.components.Component]:
        return [self.temperature, self.top_p, self.top_k, self.repetition_penalty, self.max_new_tokens, self.seed]


def sampling_controls(cfg: AppConfig, prefix: str, max_new_tokens: int = 256, temperature: float = 0.7,
                      repetition_penalty: float = 1.1, seed: int = 0) -> SamplingControls:
    """The sliders every generating tab has (temperature 0 = greedy)."""
    return SamplingControls(
        gr.Slider(0, 2, value=temperature, step=0.05, label="Temperature (0 = greedy)",
                  elem_id=f"{prefix}-temperature"),
        gr.Slider(0.05, 1, value=0.95, step=0.05, label="Top-p", elem_id=f"{prefix}-top-p"),
        gr.Slider(0, 200, value=50, step=1, label="Top-k (0 = off)", elem_id=f"{prefix}-top-k"),
        gr.Slider(0.8, 2, value=repetition_penalty, step=0.05, label="Repetition penalty", elem_id=f"{prefix}-rep"),
        gr.Slider(1, cfg.limits.max_new_tokens, value=max_new_tokens, step=1, label="Max new tokens",
                  elem_id=f"{prefix}-max-new"),
        gr.Number(value=seed, precision=0, label="Seed (-1 = a new one per answer)", elem_id=f"{prefix}-seed"),
    )


def to_params(temperature: float, top_p: float, top_k: float, repetition_penalty: float,
              max_new_tokens: float, seed: float | None) -> SamplingParams:
    """Widget values -> SamplingParams (seed -1 or empty = random); BadSettingError for values no model takes."""
    return SamplingParams.from_values(max_new_tokens, temperature, top_p, top_k, repetition_penalty, seed)


def draw_seed(seed: float | None) -> float:
    """The seed the user fixed (0 or more), else a fresh one, so each answer can be reproduced from its metrics.
    A value that is not a finite number is passed on for to_params to refuse with a message."""
    if seed is None or (isinstance(seed, int | float) and math.isfinite(seed) and seed < 0):
        return secrets.randbelow(2**31)
    return seed


def model_picker(registry: ModelRegistry, kind: Kind, default: str, prefix: str,
                 remotes: RemoteHub | None = None, side_by_side: bool = False) -> tuple[gr.Dropdown, gr.Dropdown]:
    """A model dropdown (bundled first, remote models last, marked with their host), the precision dropdown it
    drives and the model's card below them. side_by_side puts model and precision in one row (also on a phone).
    """
    with gr.Row(equal_height=True) if side_by_side else nullcontext():
        model = gr.Dropdown(model_choices(registry, kind, remotes), value=default, label="Model",
                            elem_id=f"{prefix}-model", allow_custom_value=False, scale=3, min_width=150)
        precision = gr.Dropdown(precision_choices(registry, default), value=precision_choices(registry, default)[0][1],
                                label="Precision", elem_id=f"{prefix}-precision", scale=2, min_width=110)
    model.focus(lambda: gr.Dropdown(choices=model_choices(registry, kind, remotes)), None, model,  # runtime changes
                api_visibility="private", queue=False)
    with gr.Accordion("About this model", open=False, elem_id=f"{prefix}-model-card-box"):
        card = gr.Markdown(model_card(registry, default), elem_id=f"{prefix}-model-card")
    model.change(lambda m: (gr.Dropdown(choices=precision_choices(registry, m),
                                        value=precision_choices(registry, m)[0][1]), model_card(registry, m)),
                 model, [precision, card], api_visibility="private")
    return model, precision


def model_choices(registry: ModelRegistry, kind: Kind, remotes: RemoteHub | None = None) -> list[tuple[str, str]]:
    """(label, id) pairs for a model dropdown, read from the registry's catalog now (fine-tuned and remote ones
    included; a remote is marked with its host, and 'unavailable' when it could not be reached)."""
    entries = registry.catalog.of_kind(kind, remote=remotes is not None)
    return [(_label(e, remotes), e.model_id) for e in entries
            if not e.remote or (remotes is not None and remotes.serves(e.model_id))]


def _label(entry: CatalogEntry, remotes: RemoteHub | None) -> str:
    if remotes is not None and remotes.serves(entry.model_id):
        return f"{entry.model_id} ({remotes.label(entry.model_id)})"
    local = entry.bundled or bool(entry.adapter_path)
    return (f"{entry.model_id}{'' if local else ' (Hub)'} · {entry.params}"
            f"{' · tiny demo' if entry.bundled else ''}{' · unavailable here' if source_problem(entry) else ''}")


def model_card(registry: ModelRegistry, model_id: str) -> str:
    """Architecture, size, window, precisions, where it runs and where it comes from, in Markdown."""
    entry = registry.catalog.get(model_id)
    problem = source_problem(entry)
    lines = [f"**{entry.model_id}**: {entry.description}", ""]
    if problem:
        lines += [f"⛔ **Unavailable here**: {problem}", ""]
    if entry.bundled:
        lines += ["⚠️ **Tiny demo checkpoint** trained offline in minutes: it shows how the app works and writes "
                  "low-quality text on purpose. Pick a DeepSeek Hub model for real answers.", ""]
    arch = f"{entry.family}{' (mixture of experts)' if entry.moe else ''}, {entry.kind}"
    lines += [f"- Architecture: {arch}", f"- Parameters: {entry.params or 'unknown'}",
              f"- Context window: {entry.context_window:,} tokens",
              f"- Precisions here: {', '.join(label for label, _ in precision_choices(registry, model_id))}",
              f"- Runs on: {registry.hardware.describe()}",
              f"- Source: {source_of(entry)}"]
    return "\n".join(lines)


def precision_choices(registry: ModelRegistry, model_id: str) -> list[tuple[str, str]]:
    """(label, value) pairs for the precision dropdown of model_id on this hardware (a remote's server decides)."""
    entry = registry.catalog.get(model_id)
    if entry.remote:
        return [("set by the remote server", REMOTE_PRECISION)]
    return [(" · ".join(filter(None, (p.label, precision_note(entry, p)))), p.value)
            for p in available_precisions(entry, registry.hardware)]


def unavailable_note(registry: ModelRegistry, model_id: str) -> str:
    """Markdown naming the precisions not offered for model_id here and why (e.g. llama.cpp not installed)."""
    missing = unavailable_precisions(registry.catalog.get(model_id), registry.hardware)
    return "\n".join(["**Not offered here:**", *(f"- {p.label}: {why}" for p, why in missing)]) if missing else ""


def source_of(entry: CatalogEntry) -> str:
    if entry.adapter_path:
        return f"fine-tuned here: {entry.source} + LoRA adapter in {entry.adapter_path}"
    if entry.bundled:
        return f"bundled with the app ({entry.source})"
    local = f" (read from {entry.source})" if entry.source != entry.model_id else ""
    return f"https://huggingface.co/{entry.model_id}{local}"


def text_of(content: Any) -> str:
    """Flatten Gradio 6 message content (a string or a list of parts) to plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, (list, tuple)):
        return "".join(text_of(part) for part in content if not isinstance(part, dict) or part.get("type") == "text")
    return ""


def is_metrics(message: dict[str, Any]) -> bool:
    """Titled messages (metric lines, reasoning parts split off by reasoning_tags) are display-only, never context."""
    return bool((message.get("metadata") or {}).get("title"))
