"""Widgets shared by the tabs: model/precision pickers, sampling controls, message helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from core.config import AppConfig
from core.generation.sampling import SamplingParams
from core.models.catalog import Kind
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
                      repetition_penalty: float = 1.1) -> SamplingControls:
    """The sliders every generating tab has (temperature 0 = greedy)."""
    return SamplingControls(
        gr.Slider(0, 2, value=temperature, step=0.05, label="Temperature (0 = greedy)",
                  elem_id=f"{prefix}-temperature"),
        gr.Slider(0.05, 1, value=0.95, step=0.05, label="Top-p", elem_id=f"{prefix}-top-p"),
        gr.Slider(0, 200, value=50, step=1, label="Top-k (0 = off)", elem_id=f"{prefix}-top-k"),
        gr.Slider(0.8, 2, value=repetition_penalty, step=0.05, label="Repetition penalty", elem_id=f"{prefix}-rep"),
        gr.Slider(1, cfg.limits.max_new_tokens, value=max_new_tokens, step=1, label="Max new tokens",
                  elem_id=f"{prefix}-max-new"),
        gr.Number(value=0, precision=0, label="Seed (-1 = random)", elem_id=f"{prefix}-seed"),
    )


def to_params(temperature: float, top_p: float, top_k: float, repetition_penalty: float,
              max_new_tokens: float, seed: float | None) -> SamplingParams:
    """Widget values -> SamplingParams (seed -1 or empty = random); BadSettingError for values no model takes."""
    return SamplingParams.from_values(max_new_tokens, temperature, top_p, top_k, repetition_penalty, seed)


def model_picker(registry: ModelRegistry, kind: Kind, default: str, prefix: str) -> tuple[gr.Dropdown, gr.Dropdown]:
    """A model dropdown (bundled first) and the precision dropdown it drives."""
    model = gr.Dropdown(model_choices(registry, kind), value=default, label="Model", elem_id=f"{prefix}-model",
                        allow_custom_value=False)
    model.focus(lambda: gr.Dropdown(choices=model_choices(registry, kind)), None, model,  # models added at runtime
                api_visibility="private", queue=False)
    precision = gr.Dropdown(precision_choices(registry, default), value=precision_choices(registry, default)[0][1],
                            label="Precision", elem_id=f"{prefix}-precision")
    model.change(lambda m: gr.Dropdown(choices=precision_choices(registry, m),
                                       value=precision_choices(registry, m)[0][1]),
                 model, precision, api_visibility="private")
    return model, precision


def model_choices(registry: ModelRegistry, kind: Kind) -> list[tuple[str, str]]:
    """(label, id) pairs for a model dropdown, read from the registry's catalog now (fine-tuned ones included)."""
    entries = registry.catalog.of_kind(kind)
    return [(f"{e.model_id}{'' if e.bundled or e.adapter_path else ' (Hub)'} · {e.params}", e.model_id)
            for e in entries]


def precision_choices(registry: ModelRegistry, model_id: str) -> list[tuple[str, str]]:
    """(label, value) pairs for the precision dropdown of model_id on this hardware."""
    entry = registry.catalog.get(model_id)
    return [(p.label, p.value) for p in available_precisions(entry, registry.hardware)]


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
    """Metric lines shown under answers are display-only, never sent to the model."""
    return bool((message.get("metadata") or {}).get("title"))
