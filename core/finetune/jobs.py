"""Fine-tunes started from the app: one background thread at a time, with progress, Stop and a result."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from core.errors import BusyError, OutOfMemoryError, PlaygroundError
from core.finetune.data import DataLimits, load_chats, load_labeled
from core.finetune.training import Progress, TrainSettings
from core.paths import cache_root

Task = Literal["classify", "lora"]


class TrainingError(PlaygroundError):
    """Training stopped on an unexpected error."""


def output_root() -> Path:
    """Where the app writes fine-tuned models ($PLAYGROUND_CACHE/finetuned, else ~/.cache/deepseek-playground)."""
    return cache_root() / "finetuned"


@dataclass(frozen=True)
class JobRequest:
    task: Task
    data_path: str
    source: str  # what from_pretrained receives for the base model
    base_model_id: str  # the catalog id, for "Use in Chat"
    settings: TrainSettings
    text_col: str = ""
    label_col: str = ""
    freeze_fraction: float = 0.8
    max_rows: int = 0  # use only the first rows (0 = all)
    out_dir: Path = field(default_factory=lambda: output_root() / time.strftime("run-%Y%m%d-%H%M%S"))


@dataclass(frozen=True)
class JobStatus:
    fraction: float  # of the planned steps
    step: int
    total_steps: int
    points: list[dict[str, float]]
    done: bool
    result: Any | None  # ClassifyResult or LoraResult once finished
    error: str | None


class FineTuneJob:
    """One training run in a background thread; data is checked before the thread starts."""

    def __init__(self, request: JobRequest) -> None:
        request.settings.check()
        self.request = request
        self.progress = Progress()
        self.data = self._load(request)
        self.result: Any | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="finetune", daemon=True)

    @staticmethod
    def _load(request: JobRequest) -> Any:
        if request.task == "lora":
            chats = load_chats(request.data_path, DataLimits())
            return chats[: request.max_rows] if request.max_rows > 0 else chats
        data = load_labeled(request.data_path, request.text_col, request.label_col, DataLimits())
        return data.subset(list(range(min(request.max_rows, len(data))))) if request.max_rows > 0 else data

    def start(self) -> FineTuneJob:
        self._thread.start()
        return self

    def _run(self) -> None:
        from core.finetune.classify import train_classifier
        from core.finetune.lora import train_lora

        r = self.request
        try:
            if r.task == "lora":
                self.result = train_lora(self.data, r.source, r.out_dir, r.settings, progress=self.progress)
            else:
                self.result = train_classifier(self.data, r.source, r.out_dir, r.settings, r.freeze_fraction,
                                               progress=self.progress)
        except PlaygroundError as exc:
            self.error = str(exc)
        except torch.OutOfMemoryError:
            self.error = str(OutOfMemoryError("Out of memory while training: lower the batch size or max length."))
        except Exception as exc:  # noqa: BLE001 - shown to the user instead of a dead thread
            self.error = str(TrainingError(f"Training failed: {type(exc).__name__}: {exc}"))

    def stop(self) -> None:
        self.progress.stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def status(self) -> JobStatus:
        p = self.progress
        return JobStatus(p.fraction, p.step, p.total_steps, p.snapshot(), not self._thread.is_alive(), self.result,
                         self.error)


class JobBook:
    """The app's running fine-tunes by session; one at a time, since training uses every core."""

    def __init__(self, max_running: int = 1) -> None:
        self.max_running = max_running
        self._jobs: dict[str, FineTuneJob] = {}
        self._lock = threading.Lock()

    def start(self, session: str, request: JobRequest) -> FineTuneJob:
        """Check the data, then train in the background; BusyError while another run is going."""
        with self._lock:
            running = [j for j in self._jobs.values() if not j.status().done]
            if len(running) >= self.max_running:
                raise BusyError("A fine-tune is already running; wait for it or stop it first.")
            job = self._jobs[session] = FineTuneJob(request)
            return job.start()

    def get(self, session: str) -> FineTuneJob | None:
        with self._lock:
            return self._jobs.get(session)
