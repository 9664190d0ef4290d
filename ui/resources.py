"""Resources tab: resident models, their memory and load, the memory budget, an Unload button."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr

from core.config import AppConfig
from core.errors import PlaygroundError
from core.finetune.jobs import FineTuneJob, JobBook
from core.models.memory import format_bytes
from core.serving.remotes import RemoteHub
from core.serving.service import Service
from core.serving.usage import ResourceReport, report_resources, unload_idle
from ui.access import OperatorGate
from ui.errors import user_error

HEADERS = ["Model", "Precision", "Device", "Backend", "Memory", "Idle (s)", "Running", "Waiting", "Peak batch"]
REMOTE_HEADERS = ["Remote model", "Served as", "Host", "Reachable", "Last latency (s)", "In flight", "Limit",
                  "Last error"]
REFRESH_S = 2.0


def summary(report: ResourceReport, queued: int | None) -> str:
    """One Markdown paragraph: budget, free memory, load."""
    budget = (f"**{format_bytes(report.budget_bytes)}** (configured)" if report.budget_bytes is not None
              else "the device's free memory")
    used = sum(m.memory_bytes for m in report.models)
    queue = f" · **{queued}** in the server queue" if queued is not None else ""
    return (f"Memory budget: {budget} · resident models hold **{format_bytes(used)}** · "
            f"**{format_bytes(max(report.free_bytes, 0))}** free for new models  \n"
            f"Requests running: **{report.running}** · waiting for a batch row: **{report.waiting}**{queue}")


def table(report: ResourceReport) -> list[list[Any]]:
    return [[m.model_id, m.precision, m.device, m.backend, format_bytes(m.memory_bytes), round(m.idle_s),
             m.running, m.waiting, m.peak_rows] for m in report.models]


def remote_table(remotes: RemoteHub) -> list[list[Any]]:
    """One row per remote model (never counted in the memory budget): reachable, latency, requests in flight;
    a --remote URL that could not be listed is a row of its own."""
    rows: list[list[Any]] = [[r.model_id, r.model, r.host, r.reachable,
                              "" if r.latency_s is None else round(r.latency_s, 3), r.in_flight, r.limit, r.error]
                             for r in remotes.report()]
    rows += [["(none listed)", "", url, "no", "", 0, "", why] for url, why in remotes.down.items()]
    return rows


def training_line(running: list[FineTuneJob]) -> str:
    """What the fine-tune slot is doing, for the Resources tab."""
    if not running:
        return "Fine-tune: none running."
    lines = []
    for job in running:
        r, p = job.request, job.progress
        lines.append(f"Fine-tune running: **{r.task}** on {r.base_model_id}, step {p.step} / {p.total_steps or '?'}, "
                     f"{time.time() - job.started:.0f} s so far")
    return "  \n".join(lines)


def choice(model_id: str, precision: str) -> str:
    return f"{model_id} · {precision}"


def build(service: Service, cfg: AppConfig, jobs: JobBook) -> None:
    """The tab's layout and wiring; call inside a gr.Tab."""
    registry = service.registry
    blocks = gr.context.Context.root_block  # for the server queue's length

    def queued() -> int | None:
        queue = getattr(blocks, "_queue", None)
        return len(queue) if queue is not None else None

    info = gr.Markdown(elem_id="resources-summary")
    models = gr.Dataframe(headers=HEADERS, elem_id="resources-models", interactive=False, label="Resident models")
    with gr.Row():
        picked = gr.Dropdown([], label="Resident model", elem_id="resources-pick", scale=3)
        unload = gr.Button("Unload", variant="stop", elem_id="resources-unload", scale=1)
        refresh = gr.Button("Refresh", elem_id="resources-refresh", scale=1)
    remotes = gr.Dataframe(headers=REMOTE_HEADERS, elem_id="resources-remotes", interactive=False,
                           label="Remote models (served elsewhere, outside the memory budget)",
                           visible=bool(service.remotes.models or service.remotes.down))
    gate = OperatorGate(cfg)
    with gr.Row():
        training = gr.Markdown(elem_id="resources-finetune")
        stop_training = gr.Button("Stop fine-tune", variant="stop", elem_id="resources-finetune-stop", scale=0)
    admin = gr.Textbox(label="Admin token (for Unload and Stop fine-tune)", type="password", visible=not gate.open,
                       elem_id="resources-admin")
    timer = gr.Timer(REFRESH_S)

    def on_refresh(current: str | None) -> tuple[str, list[list[Any]], gr.Dropdown, list[list[Any]]]:
        report = report_resources(registry)
        names = [choice(m.model_id, m.precision) for m in report.models]
        return summary(report, queued()), table(report), gr.Dropdown(
            choices=names, value=current if current in names else (names[0] if names else None)), \
            remote_table(service.remotes)

    def on_unload(current: str | None, token: str) -> tuple[str, list[list[Any]], gr.Dropdown, list[list[Any]]]:
        if not current:
            raise user_error("No model is resident.")
        model_id, _, precision = current.rpartition(" · ")
        try:
            gate.check(token)
            if not unload_idle(registry, model_id, precision):
                gr.Info(f"{current} was no longer resident.")
        except PlaygroundError as exc:
            raise user_error(exc) from None
        return on_refresh(None)

    def on_refresh_training() -> str:
        return training_line(jobs.running())

    def on_stop_training(token: str) -> str:
        try:
            gate.check(token)
        except PlaygroundError as exc:
            raise user_error(exc) from None
        running = jobs.running()
        if not running:
            raise user_error("No fine-tune is running.")
        for job in running:
            job.stop()  # ends at the next step; the model so far is evaluated and saved as usual
        return "Stopping the fine-tune at its next step…"

    outputs = [info, models, picked, remotes]
    for event in (timer.tick, refresh.click):
        event(on_refresh, picked, outputs, api_visibility="private", queue=False)
        event(on_refresh_training, None, training, api_visibility="private", queue=False)
    unload.click(on_unload, [picked, admin], outputs, api_visibility="private")
    stop_training.click(on_stop_training, admin, training, api_visibility="private", queue=False)
