"""Quantization tab, "Captions at each precision": the same images captioned by a vision model at each precision."""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from core.config import AppConfig
from core.errors import PlaygroundError
from core.generation.image_batch import collect_items
from core.paths import ASSETS
from core.quant.vision_comparison import CaptionColumn, same_caption
from core.serving.service import Service
from ui.access import client_of
from ui.controls import precision_choices
from ui.errors import user_error

SUMMARY = ["precision", "images/s", "agreement with full precision", "note"]
EXAMPLES = sorted((ASSETS / "images").glob("*.png"))


def caption_comparison(service: Service, model_id: str, precisions: list[str], paths: list[str] | None,
                       style: str = "short", client: str | None = None) -> tuple[list[str], list[CaptionColumn],
                                                                               list[str]]:
    """(file names, one column per precision, refusals) for the uploads, or the bundled example images."""
    items = collect_items(list(paths or []) or [str(p) for p in EXAMPLES], service.limits)
    good = [i for i in items if i.image is not None]
    refused = [f"{i.name}: {i.error}" for i in items if i.image is None]
    columns = service.compare_captions(model_id, precisions, [i.image for i in good], style,  # type: ignore[misc]
                                       client)
    return [i.name for i in good], columns, refused


def side_by_side_html(names: list[str], columns: list[CaptionColumn]) -> str:
    """One row per image, one caption column per precision; a caption unlike full precision's is marked."""
    head = "".join(f"<th>{html.escape(c.precision.label)}</th>" for c in columns)
    rows = []
    for i, name in enumerate(names):
        cells = []
        for column in columns:
            text = column.captions[i] if column.captions else column.error
            differs = (column.agreement is not None and columns[0].captions
                       and not same_caption(text, columns[0].captions[i]))  # as the agreement share counts
            cells.append(f"<td{' class=differs' if differs else ''}>{html.escape(text)}{' ≠' if differs else ''}"
                         "</td>")
        rows.append(f"<tr><td>{html.escape(name)}</td>{''.join(cells)}</tr>")
    return f"<table id='vision-compare-captions'><tr><th>file</th>{head}</tr>{''.join(rows)}</table>"


def summary_rows(columns: list[CaptionColumn]) -> list[list[Any]]:
    return [[c.precision.label, round(c.images_per_s, 2) if c.captions else None,
             "reference" if c.agreement is None and not c.error else
             (f"{c.agreement:.0%}" if c.agreement is not None else ""), c.error] for c in columns]


def build(service: Service, cfg: AppConfig) -> None:
    """The accordion's layout and wiring; call inside the Quantization tab."""
    registry = service.registry
    models = [e.model_id for e in registry.catalog.of_kind("vision") if not e.remote]
    if not models:
        return
    default = cfg.models.default_vision if cfg.models.default_vision in models else models[0]
    choices = precision_choices(registry, default)
    with gr.Accordion("Captions at each precision (vision models)", open=False, elem_id="vision-compare"):
        with gr.Row():
            model = gr.Dropdown(models, value=default, label="Vision model", elem_id="vision-compare-model")
            precisions = gr.CheckboxGroup(choices, value=[v for _, v in choices], label="Precisions",
                                          elem_id="vision-compare-precisions")
        files = gr.File(file_count="multiple", file_types=["image", ".zip"], elem_id="vision-compare-files",
                        label="Images or a zip (empty: the bundled example images)")
        run = gr.Button("Compare captions", variant="primary", elem_id="vision-compare-run")
        summary = gr.Dataframe(headers=SUMMARY, interactive=False, elem_id="vision-compare-summary")
        captions = gr.HTML(elem_id="vision-compare-output")

    def on_compare(model_id: str, chosen: list[str], paths: list[str] | None,
                   request: gr.Request) -> tuple[Any, str]:
        try:
            names, columns, refused = caption_comparison(service, model_id, chosen, paths, client=client_of(request))
        except PlaygroundError as exc:
            raise user_error(exc) from None
        notes = "".join(f"<p>{html.escape(r)}</p>" for r in refused)
        return summary_rows(columns), side_by_side_html(names, columns) + notes

    def on_model(model_id: str) -> gr.CheckboxGroup:
        offered = precision_choices(registry, model_id)
        return gr.CheckboxGroup(choices=offered, value=[v for _, v in offered])

    model.change(on_model, model, precisions, api_visibility="private")
    run.click(on_compare, [model, precisions, files], [summary, captions], api_visibility="private")
