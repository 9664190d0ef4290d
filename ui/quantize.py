"""The Quantization tab: one prompt through several precisions, measured side by side, exportable."""

from __future__ import annotations

import html
import json
from typing import Any

import gradio as gr

from core.config import AppConfig
from core.errors import PlaygroundError
from core.generation.sampling import SamplingParams
from core.quant.comparison import DEFAULT_PROMPT, ComparisonRun
from core.quant.report import to_json, to_markdown
from core.serving.remote_compare import add_remote_rows
from core.serving.request_log import logged_request
from core.serving.service import Service
from ui import quant_tables as qt
from ui import vision_compare
from ui.access import client_of
from ui.controls import precision_choices, unavailable_note
from ui.errors import user_error
from ui.exports import export_folder


def run_comparison(service: Service, cfg: AppConfig, model_id: str, precisions: list[str], prompt: str,
                   max_new_tokens: float, seed: float | None, progress: Any = None,
                   remotes: list[str] | None = None, client: str | None = None) -> ComparisonRun:
    """Widget values -> one Service.compare call (greedy, so the outputs are comparable), plus remote rows."""
    params = SamplingParams(max_new_tokens=int(max_new_tokens), temperature=0.0, seed=int(seed or 0))
    report = (lambda f, m: progress(f, desc=m)) if progress is not None else None
    run = service.compare(model_id, list(precisions or []), prompt or "", params, client, report)
    return add_remote_rows(run, service.registry, service.remotes, list(remotes or []), report)


def outputs_html(run: ComparisonRun) -> str:
    """The answers in columns, one per precision."""
    cells = "".join(
        f"<div style='flex:1;min-width:220px;border:1px solid #ccc;border-radius:6px;padding:8px'>"
        f"<b>{html.escape(r.label)}</b><p style='white-space:pre-wrap'>{html.escape(r.error or r.output)}</p></div>"
        for r in run.results)
    return f"<div style='display:flex;gap:8px;flex-wrap:wrap'>{cells}</div>"


def export_files(run: ComparisonRun) -> tuple[str, str]:
    """Write the run as JSON and Markdown into a fresh temp folder; returns both paths."""
    folder = export_folder("quant-run-")
    json_path, md_path = folder / "quantization-comparison.json", folder / "quantization-comparison.md"
    json_path.write_text(to_json(run), encoding="utf-8")
    md_path.write_text(to_markdown(run), encoding="utf-8")
    return str(json_path), str(md_path)


def build(service: Service, cfg: AppConfig) -> None:
    """Layout and wiring of the tab."""
    registry = service.registry
    text_models = [e.model_id for e in registry.catalog.of_kind("text")]
    default_model = cfg.models.default_text if cfg.models.default_text in text_models else text_models[0]
    choices = precision_choices(registry, default_model)
    with gr.Row():
        model = gr.Dropdown(text_models, value=default_model, label="Model", elem_id="quant-model")
        precisions = gr.CheckboxGroup(choices, value=[v for _, v in choices[:1]] + _quantized_defaults(choices),
                                      label="Precisions to compare", elem_id="quant-precisions")
    remote_ids = list(service.remotes.models)
    remotes = gr.CheckboxGroup(remote_ids, value=[], label="Remote endpoints to add as rows (same prompt, greedy)",
                               elem_id="quant-remotes", visible=bool(remote_ids))
    unavailable = gr.Markdown(unavailable_note(registry, default_model), elem_id="quant-unavailable")
    prompt = gr.Textbox(DEFAULT_PROMPT, label="Prompt", lines=2, elem_id="quant-prompt")
    with gr.Row():
        max_new = gr.Slider(1, min(256, cfg.limits.max_new_tokens), value=48, step=1, label="Max new tokens",
                            elem_id="quant-max-new")
        seed = gr.Number(0, precision=0, label="Seed (greedy decoding)", elem_id="quant-seed")
        compare = gr.Button("Compare", variant="primary", elem_id="quant-compare")
    outputs = gr.HTML(elem_id="quant-outputs")
    noise = gr.Markdown(elem_id="quant-noise")
    tables = [gr.Dataframe(headers=list(qt.QUALITY), label="Quality vs full precision", elem_id="quant-quality",
                           interactive=False, wrap=True)]
    with gr.Row(equal_height=False):
        tables += [gr.Dataframe(headers=list(qt.SPEED), label="Speed", elem_id="quant-speed", interactive=False,
                                wrap=True, scale=4),
                   gr.Dataframe(headers=list(qt.MEMORY), label="Memory", elem_id="quant-memory", interactive=False,
                                wrap=True, scale=5)]
    gr.Markdown(qt.LEGEND, elem_id="quant-legend")
    with gr.Row():
        plots = [gr.BarPlot(x="precision", y=col, title=title, y_lim=[0, None], x_label_angle=0,
                            elem_id=f"quant-chart-{i}") for i, (col, title) in enumerate(qt.CHARTS)]
    notes = gr.Markdown(elem_id="quant-notes")
    with gr.Row():
        json_file = gr.File(label="Export JSON (every column)", elem_id="quant-json")
        md_file = gr.File(label="Export Markdown", elem_id="quant-md")
    vision_compare.build(service, cfg)  # its own accordion: captions of a vision model at each precision

    def on_compare(model_id: str, chosen: list[str], text: str, max_tokens: float, seed_value: float | None,
                   chosen_remotes: list[str], request: gr.Request,
                   progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        try:
            with logged_request("/compare", model_id, ",".join(chosen or [])):
                run = run_comparison(service, cfg, model_id, chosen, text, max_tokens, seed_value, progress,
                                     chosen_remotes, client_of(request))
        except PlaygroundError as exc:
            raise user_error(exc) from None
        charts = [gr.BarPlot(frame, sort=list(frame["precision"])) for frame in qt.chart_frames(run)]  # run order
        frames = (qt.quality_frame(run), qt.speed_frame(run), qt.memory_frame(run))
        return (outputs_html(run), qt.noise_line(run), *frames, *charts, qt.notes_markdown(run), *export_files(run))

    def on_model(model_id: str) -> tuple[gr.CheckboxGroup, str]:
        new = precision_choices(registry, model_id)
        return (gr.CheckboxGroup(choices=new, value=[v for _, v in new[:1]] + _quantized_defaults(new)),
                unavailable_note(registry, model_id))

    model.change(on_model, model, [precisions, unavailable], api_visibility="private")
    compare.click(on_compare, [model, precisions, prompt, max_new, seed, remotes],
                  [outputs, noise, *tables, *plots, notes, json_file, md_file], api_visibility="private",
                  concurrency_limit=None)
    build_api(service, cfg)


def build_api(service: Service, cfg: AppConfig) -> None:
    """/compare: the same comparison for gradio_client; returns the JSON export as a dict."""

    def compare(model: str, precisions: list[str], prompt: str = DEFAULT_PROMPT, max_new_tokens: int = 32,
                seed: int = 0, remotes: list[str] | None = None, request: gr.Request | None = None) -> dict:
        try:
            with logged_request("/compare", model, ",".join(precisions or [])):
                run = run_comparison(service, cfg, model, precisions, prompt, max_new_tokens, seed, None, remotes,
                                     client_of(request))
        except PlaygroundError as exc:
            raise user_error(exc) from None
        return json.loads(to_json(run))

    gr.api(compare, api_name="compare", concurrency_limit=None)  # Service.compare bounds it, with a busy message


def _quantized_defaults(choices: list[tuple[str, str]]) -> list[str]:
    return [v for _, v in choices if v in ("int8", "int4")]
