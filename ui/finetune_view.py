"""What the Fine-tune tab shows of a run: its curves (loss; held-out scores) and the trained folder as a zip."""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr
import pandas as pd

from core.finetune.jobs import JobStatus
from ui.exports import export_folder

LOSSES = {"loss": "training loss", "eval_loss": "held-out loss"}
SCORES = {"eval_accuracy": "held-out accuracy", "eval_macro_f1": "held-out macro-F1"}


def curve(status: JobStatus, names: dict[str, str]) -> pd.DataFrame:
    """Long-format points (step, value, metric) of the named metrics; one point per step and metric (the last:
    the final evaluation repeats the last epoch's at the same step, and the plot would add them up)."""
    points = {(names[k], p["step"]): v for p in status.points for k, v in p.items() if k in names}
    order = list(names.values())  # the legend lists the series in this order
    rows = sorted(points.items(), key=lambda item: (order.index(item[0][0]), item[0][1]))
    return pd.DataFrame([{"step": step, "value": value, "metric": metric} for (metric, step), value in rows],
                        columns=["step", "value", "metric"])


def plot_update(frame: pd.DataFrame) -> gr.LinePlot:
    """The plot with these points; naming the series in the legend makes the chart redraw its colours when a
    series first appears (held-out points come once per epoch), else the legend keeps the first frame's."""
    return gr.LinePlot(frame, colors_in_legend=list(dict.fromkeys(frame["metric"])))


def zip_run(folder: str) -> str:
    """The trained model or adapter folder as one zip in a fresh temp folder; its path."""
    source = Path(folder)
    target = export_folder("finetune-zip-") / source.name
    return shutil.make_archive(str(target), "zip", root_dir=source)
