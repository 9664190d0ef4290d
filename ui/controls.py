"""Widgets shared by the tabs: model/precision pickers, sampling controls, message helpers."""

from __future__ import annotations

import secrets
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import gradio as gr

from core.config import AppConfig
from core.generation.sampling import SamplingParams
from core.models.catalog import CatalogEntry, Kind, source_problem
from core.quant.backends import available_precisions
from core.serving.registry import ModelRegistry


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
    """Widget values -> SamplingParams (seed -1 or empty = random)."""
    chosen_seed = None if seed is None or int(seed) < 0 else int(seed)
    return SamplingParams(int(max_new_tokens), float(temperature), float(top_p), int(top_k),
                          float(repetition_penalty), chosen_seed)


def draw_seed(seed: float | None) -> int:
    """The seed the user fixed (0 or more), else a fresh one, so each answer can be reproduced from its metrics."""
    return int(seed) if seed is not None and int(seed) >= 0 else secrets.randbelow(2**31)


def model_picker(registry: ModelRegistry, kind: Kind, default: str, prefix: str,
                 side_by_side: bool = False) -> tuple[gr.Dropdown, gr.Dropdown]:
    """A model dropdown (bundled first), the precision dropdown it drives and the model's card below them.

    side_by_side puts model and precision in one row (they stay side by side on a phone).
    """
    with gr.Row(equal_height=True) if side_by_side else nullcontext():
        model = gr.Dropdown(model_choices(registry, kind), value=default, label="Model", elem_id=f"{prefix}-model",
                            allow_custom_value=False, scale=3, min_width=150)
        precision = gr.Dropdown(precision_choices(registry, default), value=precision_choices(registry, default)[0][1],
                                label="Precision", elem_id=f"{prefix}-precision", scale=2, min_width=110)
    model.focus(lambda: gr.Dropdown(choices=model_choices(registry, kind)), None, model,  # models added at runtime
                api_visibility="private", queue=False)
    with gr.Accordion("About this model", open=False, elem_id=f"{prefix}-model-card-box"):
        card = gr.Markdown(model_card(registry, default), elem_id=f"{prefix}-model-card")
    model.change(lambda m: (gr.Dropdown(choices=precision_choices(registry, m),
                                        value=precision_choices(registry, m)[0][1]), model_card(registry, m)),
                 model, [precision, card], api_visibility="private")
    return model, precision


def model_choices(registry: ModelRegistry, kind: Kind) -> list[tuple[str, str]]:
    """(label, id) pairs for a model dropdown, read from the registry's catalog now (fine-tuned ones included)."""
    entries = registry.catalog.of_kind(kind)
    return [(f"{e.model_id}{'' if e.bundled or e.adapter_path else ' (Hub)'} · {e.params}"
             f"{' · tiny demo' if e.bundled else ''}{' · unavailable here' if source_problem(e) else ''}", e.model_id)
            for e in entries]


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
    """(label, value) pairs for the precision dropdown of model_id on this hardware."""
    entry = registry.catalog.get(model_id)
    return [(p.label, p.value) for p in available_precisions(entry, registry.hardware)]


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
