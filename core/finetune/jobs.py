"""Fine-tunes started from the app: one background thread at a time, with progress, Stop and a result."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from core.errors import BusyError, OutOfMemoryError, PlaygroundError
from core.finetune.data import DataLimits, load_chats, load_labeled
from core.finetune.runs import prune_runs, reserve_run_dir, set_aside_interrupted
from core.finetune.training import Progress, TrainSettings
from core.paths import cache_root
from core.serving.request_log import RequestRecord, logger

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
    out_dir: Path | None = None  # None: a new unique folder under the book's root


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

    def __init__(self, request: JobRequest, root: Path | None = None) -> None:
        request.settings.check()
        self.progress = Progress()
        self.data = self._load(request)
        self.request = dataclasses.replace(request, out_dir=request.out_dir or reserve_run_dir(root or output_root()))
        self.result: Any | None = None
        self.error: str | None = None
        self.interrupted = False
        self.started = time.time()
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
        record = RequestRecord("/finetune", r.base_model_id, r.task)
        try:
            if r.task == "lora":
                result = train_lora(self.data, r.source, r.out_dir, r.settings, progress=self.progress)
            else:
                result = train_classifier(self.data, r.source, r.out_dir, r.settings, r.freeze_fraction,
                                          progress=self.progress)
            if self.interrupted:  # kept, but apart from the runs people finished
                result = dataclasses.replace(result, out_dir=str(set_aside_interrupted(Path(result.out_dir))))
            self.result = result
            record.outcome = "interrupted" if self.interrupted else "stopped" if result.stopped else "ok"
        except PlaygroundError as exc:
            self.error = str(exc)
            record.outcome = f"refused {type(exc).__name__}: {exc}"
        except torch.OutOfMemoryError:
            self.error = str(OutOfMemoryError("Out of memory while training: lower the batch size or max length."))
            record.outcome = f"refused OutOfMemoryError: {self.error}"
        except Exception as exc:  # noqa: BLE001 - shown to the user instead of a dead thread
            self.error = str(TrainingError(f"Training failed: {type(exc).__name__}: {exc}"))
            record.outcome = f"bug {type(exc).__name__}"
            logger.error(record.line(), exc_info=True)
        finally:
            if self.result is None and r.out_dir is not None:
                with contextlib.suppress(OSError):
                    r.out_dir.rmdir()  # the reserved folder, if nothing was saved into it
        if not record.outcome.startswith("bug"):
            logger.info(record.line() + f" steps={self.progress.step}")

    def stop(self) -> None:
        self.progress.stop.set()

    def interrupt(self) -> None:
        """Stop at the next step because the session that started it went away; the result is set aside."""
        self.interrupted = True
        self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def status(self) -> JobStatus:
        p = self.progress
        return JobStatus(p.fraction, p.step, p.total_steps, p.snapshot(), not self._thread.is_alive(), self.result,
                         self.error)


class JobBook:
    """The app's running fine-tunes by session; one at a time, since training uses every core."""

    def __init__(self, max_running: int = 1, root: Path | None = None, keep_runs: int = 20,
                 max_total_bytes: int | None = None) -> None:
        self.max_running = max_running
        self.root = root or output_root()
        self.keep_runs, self.max_total_bytes = keep_runs, max_total_bytes
        self._jobs: dict[str, FineTuneJob] = {}
        self._lock = threading.Lock()

    def start(self, session: str, request: JobRequest) -> FineTuneJob:
        """Check the data, prune old runs, then train in the background; BusyError while another run is going."""
        with self._lock:
            running = [j for j in self._jobs.values() if not j.status().done]
            if len(running) >= self.max_running:
                raise BusyError("A fine-tune is already running; wait for it or stop it first.")
            prune_runs(self.root, self.keep_runs - 1, self.max_total_bytes)  # room for this one: keep_runs in all
            job = self._jobs[session] = FineTuneJob(request, self.root)
            return job.start()

    def get(self, session: str) -> FineTuneJob | None:
        with self._lock:
            return self._jobs.get(session)

    def running(self) -> list[FineTuneJob]:
        """Jobs still training, oldest first."""
        with self._lock:
            return sorted((j for j in self._jobs.values() if not j.status().done), key=lambda j: j.started)
