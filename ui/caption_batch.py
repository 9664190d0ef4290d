"""Caption tab, "Many images": images or zips in, a table filled batch by batch, Stop, CSV/JSONL out; /caption_batch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from core.config import AppConfig
from core.errors import PlaygroundError
from core.generation.batch_caption import (
    DEFAULT_BATCH_SIZE,
    CaptionBatchRequest,
    CaptionRow,
    rows_to_csv,
    rows_to_jsonl,
)
from core.generation.image_batch import collect_items
from core.generation.sampling import SamplingParams
from core.serving.service import CaptionRows, Service
from ui.controls import SamplingControls, to_params
from ui.exports import export_folder

HEADERS = ["file", "caption", "seconds", "tokens"]


def table_of(rows: list[CaptionRow]) -> list[list[Any]]:
    """Rows for the Dataframe: a refused file shows its message where its caption would be."""
    return [[r.name, r.caption or r.error, round(r.seconds, 2), r.tokens] for r in rows]


def caption_rows(service: Service, paths: list[str], style: str, model_id: str, precision: str,
                 params: SamplingParams, session: str | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[tuple[list[CaptionRow], int]]:
    """(all rows so far, files in all) after each batch; bad files are rows with a message, never an exception."""
    items = collect_items(paths, service.limits)
    request = CaptionBatchRequest(tuple(items), style, int(batch_size))  # type: ignore[arg-type]
    rows: list[CaptionRow] = []
    for event in service.caption_batch(request, model_id, precision, params, session=session):
        if isinstance(event, CaptionRows):
            rows += event.rows
            yield rows, len(items)


def write_exports(rows: list[CaptionRow]) -> tuple[str, str]:
    """The table as captions.csv and captions.jsonl in a fresh export folder (ui.exports)."""
    folder = export_folder("captions-")
    (folder / "captions.csv").write_text(rows_to_csv(rows), encoding="utf-8")
    (folder / "captions.jsonl").write_text(rows_to_jsonl(rows), encoding="utf-8")
    return str(folder / "captions.csv"), str(folder / "captions.jsonl")


def build(service: Service, model: gr.Dropdown, precision: gr.Dropdown, style: gr.Radio,
          sampling: SamplingControls) -> None:
    """The "Many images" section; model, precision, style and sampling are the tab's own widgets."""
    with gr.Accordion("Many images", open=False, elem_id="batch-section"):
        files = gr.File(file_count="multiple", file_types=["image", ".zip"], label="Images or zips of images",
                        elem_id="batch-files")
        with gr.Row():
            batch_size = gr.Slider(1, 16, value=DEFAULT_BATCH_SIZE, step=1, label="Images per model pass",
                                   elem_id="batch-size", scale=2)
            run = gr.Button("Caption all", variant="primary", elem_id="batch-run")
            stop = gr.Button("Stop", variant="stop", elem_id="batch-stop")
        status = gr.Markdown("", elem_id="batch-status")
        table = gr.Dataframe(headers=HEADERS, datatype=["str", "str", "number", "number"], interactive=False,
                             wrap=True, elem_id="batch-table")
        with gr.Row():
            csv_file = gr.File(label="CSV", interactive=False, elem_id="batch-csv")
            jsonl_file = gr.File(label="JSONL", interactive=False, elem_id="batch-jsonl")

    def on_run(paths: list[str] | None, per_pass: float, chosen_style: str, model_id: str, prec: str,
               temperature: float, top_p: float, top_k: int, repetition: float, max_new: int, seed: float,
               request: gr.Request, progress: gr.Progress = gr.Progress()) -> Iterator[Any]:
        params = to_params(temperature, top_p, top_k, repetition, max_new, seed)
        rows: list[CaptionRow] = []
        try:
            for rows, total in caption_rows(service, list(paths or []), chosen_style, model_id, prec, params,
                                            session_key(request), int(per_pass)):
                progress(len(rows) / max(total, 1), desc="Captioning")
                yield table_of(rows), f"{len(rows)} / {total} files done", gr.skip(), gr.skip()
        except PlaygroundError as exc:
            raise gr.Error(str(exc)) from None
        csv_path, jsonl_path = write_exports(rows)
        yield table_of(rows), _summary(rows), csv_path, jsonl_path

    def on_stop(request: gr.Request) -> None:
        service.stop(session_key(request))

    run.click(on_run, [files, batch_size, style, model, precision, *sampling.inputs],
              [table, status, csv_file, jsonl_file], api_visibility="private", concurrency_limit=None)
    stop.click(on_stop, None, None, api_visibility="private", queue=False)


def _summary(rows: list[CaptionRow]) -> str:
    done = sum(1 for r in rows if r.caption)
    refused = [r for r in rows if r.error]
    seconds = sum(r.seconds for r in rows)
    rate = f" · {done / seconds:.2f} images/s" if seconds > 0 else ""
    return f"{done} captioned, {len(refused)} not captioned{rate}. Download the table as CSV or JSONL below."


def session_key(request: gr.Request) -> str:
    """The Stop key of this section in this browser session."""
    return f"caption-batch:{request.session_hash or 'api'}"


def build_api(service: Service, cfg: AppConfig) -> None:
    """/caption_batch: a list of files (gradio_client.handle_file each), rows streamed as each batch finishes."""

    def caption_batch(files: list[str] | None, style: str = "short", model: str = cfg.models.default_vision,
                      precision: str = "", max_new_tokens: int = 64, temperature: float = 0.0,
                      batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[list[dict[str, Any]]]:
        """Caption every image (zips expanded): the rows so far ({file, caption, seconds, tokens, error}) each time."""
        prec = precision or service.registry.hardware.full_precision.value
        params = to_params(temperature, 0.95, 50, 1.0, max_new_tokens, 0)
        try:
            items = collect_items(list(files or []), service.limits)
            request = CaptionBatchRequest(tuple(items), style, int(batch_size))  # type: ignore[arg-type]
            rows: list[CaptionRow] = []
            for event in service.caption_batch(request, model, prec, params):
                if isinstance(event, CaptionRows):
                    rows += event.rows
                    yield [r.as_dict() for r in rows]
        except PlaygroundError as exc:
            raise gr.Error(str(exc)) from None

    with gr.Column(visible=False):
        fields = [gr.File(file_count="multiple", label="files"), gr.Textbox("short", label="style"),
                  gr.Textbox(cfg.models.default_vision, label="model"), gr.Textbox("", label="precision"),
                  gr.Number(64, precision=0, label="max_new_tokens"), gr.Number(0.0, label="temperature"),
                  gr.Number(DEFAULT_BATCH_SIZE, precision=0, label="batch_size")]
        result = gr.JSON(label="rows")
        endpoint = gr.Button("caption_batch")
    endpoint.click(caption_batch, fields, result, api_name="caption_batch", concurrency_limit=None)
