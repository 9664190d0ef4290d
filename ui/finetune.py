"""Fine-tune tab: upload CSV/JSONL, pick columns and model, train with live plots, Stop, Use in Chat, download."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from core.config import AppConfig
from core.errors import PlaygroundError
from core.finetune.adapters import adapter_entry
from core.finetune.classify import classify_texts
from core.finetune.data import file_columns
from core.finetune.jobs import JobBook, JobRequest, JobStatus
from core.finetune.training import TrainSettings
from core.paths import ASSETS
from core.serving.service import Service
from ui.errors import public_text, user_error
from ui.finetune_view import LOSSES, SCORES, curve, plot_update, zip_run

TASKS = {"Classifier (text -> label)": "classify", "LoRA chat adapter (JSONL messages)": "lora"}
EXAMPLES = {"classify": ASSETS / "data" / "finance_headlines.csv", "lora": ASSETS / "data" / "instructions.jsonl"}
POLL_S = 0.5


def report(status: JobStatus) -> str:
    if status.error:
        return f"**Failed:** {public_text(status.error)}"
    if status.result is None:
        return f"Training… step {status.step} / {status.total_steps or '?'}"
    stopped = " (stopped early)" if status.result.stopped else ""
    return f"**Done{stopped}:** {status.result.summary()}\n\nSaved as `{Path(status.result.out_dir).name}`"


def build(service: Service, cfg: AppConfig, jobs: JobBook) -> None:
    """The tab's layout and wiring; call inside a gr.Tab."""
    registry = service.registry
    models = [e.model_id for e in registry.catalog.of_kind("text")]
    with gr.Row():
        with gr.Column(scale=2):
            task = gr.Radio(list(TASKS), value=next(iter(TASKS)), label="What to train", elem_id="finetune-task")
            upload = gr.File(label="Training data (.csv, .tsv, .jsonl)", file_types=[".csv", ".tsv", ".jsonl"],
                             elem_id="finetune-file")
            example = gr.Button("Use the example data", size="sm", elem_id="finetune-example")
            with gr.Row() as columns_row:  # a classifier's columns; LoRA reads JSONL messages
                text_col = gr.Dropdown([], label="Text column", elem_id="finetune-text-col", allow_custom_value=True)
                label_col = gr.Dropdown([], label="Label column", elem_id="finetune-label-col", allow_custom_value=True)
            model = gr.Dropdown(models, value=cfg.models.default_text, label="Base model", elem_id="finetune-model")
            with gr.Row():
                epochs = gr.Number(3, label="Epochs", minimum=0.1, maximum=100, elem_id="finetune-epochs")
                lr = gr.Number(2e-3, label="Learning rate", elem_id="finetune-lr")
                rows = gr.Number(0, precision=0, label="Use first N rows (0 = all)", elem_id="finetune-rows")
            freeze = gr.Slider(0, 1, value=0.8, step=0.05, label="Frozen share of lower blocks (classifier)",
                               elem_id="finetune-freeze")
            with gr.Row():
                train = gr.Button("Train", variant="primary", elem_id="finetune-train")
                stop = gr.Button("Stop", variant="stop", elem_id="finetune-stop")
        with gr.Column(scale=3):
            status = gr.Markdown("Upload a file or use the example data, then Train.", elem_id="finetune-status")
            # titles inside the chart, no block label: with a label the fixed height clips the legend
            loss_plot = gr.LinePlot(x="step", y="value", color="metric", title="Loss: training and held-out",
                                    show_label=False, y_title="loss", color_title="", elem_id="finetune-loss")
            score_plot = gr.LinePlot(x="step", y="value", color="metric", title="Held-out accuracy and macro-F1",
                                     show_label=False, y_title="share", y_lim=[0, 1], color_title="",
                                     elem_id="finetune-scores")
            with gr.Row():
                use = gr.Button("Use in Chat", interactive=False, elem_id="finetune-use", visible=False)
                download = gr.DownloadButton("Download the trained model (.zip)", visible=False,
                                             elem_id="finetune-download")
            with gr.Row() as probe_row:
                probe = gr.Textbox(label="Try the classifier", placeholder="A headline…", elem_id="finetune-probe")
                predicted = gr.Textbox(label="Prediction", interactive=False, elem_id="finetune-prediction")
    result_dir = gr.State("")

    def on_file(path: str | None, task_name: str) -> tuple[Any, Any]:
        if not path:
            return gr.Dropdown(choices=[], value=None), gr.Dropdown(choices=[], value=None)
        try:
            columns = file_columns(path)
        except PlaygroundError as exc:
            raise user_error(exc) from None
        label = next((c for c in columns if c.lower() in ("label", "sentiment", "class", "category")), columns[-1])
        text = next((c for c in columns if c != label), columns[0])
        return gr.Dropdown(choices=columns, value=text), gr.Dropdown(choices=columns, value=label)

    def on_train(path: str | None, task_name: str, text: str, label: str, model_id: str, n_epochs: float,
                 rate: float, n_rows: float, frozen: float, request: gr.Request) -> Iterator[Any]:
        if not path:
            raise user_error("Upload a training file first (or use the example data).")
        task_id = TASKS[task_name]
        try:
            settings = TrainSettings(epochs=float(n_epochs or 0), learning_rate=float(rate or 0),
                                     max_length=64 if task_id == "classify" else 256)
            job = jobs.start(request.session_hash or "api", JobRequest(
                task_id, path, registry.catalog.get(model_id).source, model_id, settings, text or "", label or "",
                float(frozen), int(n_rows or 0)))
        except PlaygroundError as exc:
            raise user_error(exc) from None
        except (TypeError, ValueError, OverflowError):  # NaN, infinity or not a number at all
            raise user_error("Epochs, learning rate, rows and the frozen share must be finite numbers.") from None
        try:
            yield ("Loading the model…", gr.skip(), gr.skip(), gr.Button(interactive=False),
                   gr.DownloadButton(visible=False), "", gr.Button(interactive=False))
            while not (state := job.status()).done:
                yield report(state), *plots(state), gr.skip(), gr.skip(), gr.skip(), gr.skip()
                time.sleep(POLL_S)
        finally:  # gradio closes this generator when the browser session disconnects: the run ends with it
            if not job.status().done:
                job.interrupt()
        if state.error:
            yield report(state), *plots(state), gr.skip(), gr.skip(), "", gr.Button(interactive=True)
            raise user_error(state.error)
        usable = gr.Button(interactive=task_id == "lora")  # only an adapter can chat
        what = "adapter" if task_id == "lora" else "classifier"
        archive = gr.DownloadButton(f"Download the trained {what} (.zip)", value=zip_run(state.result.out_dir),
                                    visible=True)
        yield report(state), *plots(state), usable, archive, state.result.out_dir, gr.Button(interactive=True)

    def plots(state: JobStatus) -> tuple[gr.LinePlot, gr.LinePlot]:
        return plot_update(curve(state, LOSSES)), plot_update(curve(state, SCORES))

    def on_task(task_name: str) -> tuple[Any, ...]:
        classify = TASKS[task_name] == "classify"
        return (gr.Row(visible=classify), gr.Slider(visible=classify), gr.Row(visible=classify),
                gr.LinePlot(visible=classify), gr.Button(visible=not classify))

    def on_stop(request: gr.Request) -> None:
        job = jobs.get(request.session_hash or "api")
        if job:
            job.stop()

    def on_use(folder: str, model_id: str) -> str:
        try:
            entry = adapter_entry(registry.catalog.get(model_id), folder)
            registry.register(entry)
        except PlaygroundError as exc:
            raise user_error(exc) from None
        return f"**{entry.model_id}** is now in the Chat tab's model list (base {model_id} + this adapter)."

    def on_probe(text: str, folder: str) -> str:
        if not folder or not text.strip():
            raise user_error("Train a classifier first, then type a text to classify.")
        try:
            best = classify_texts(folder, [text])[0]
        except PlaygroundError as exc:
            raise user_error(exc) from None
        return f"{best.label} ({best.probability:.0%})"

    def on_example(task_name: str) -> str:
        return str(EXAMPLES[TASKS[task_name]])

    upload.change(on_file, [upload, task], [text_col, label_col], api_visibility="private")
    example.click(on_example, task, upload, api_visibility="private")
    task.change(on_task, task, [columns_row, freeze, probe_row, score_plot, use], api_visibility="private")
    train.click(on_train, [upload, task, text_col, label_col, model, epochs, lr, rows, freeze],
                [status, loss_plot, score_plot, use, download, result_dir, train], api_name="finetune",
                concurrency_limit=None)  # JobBook runs one at a time and refuses the rest at once
    stop.click(on_stop, None, None, api_visibility="private", queue=False)
    use.click(on_use, [result_dir, model], status, api_name="finetune_use_in_chat")
    probe.submit(on_probe, [probe, result_dir], predicted, api_name="finetune_classify")

