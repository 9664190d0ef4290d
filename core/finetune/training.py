"""What classification and LoRA share: TrainingArguments per hardware, live progress, Stop."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import EarlyStoppingCallback, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from core.errors import BadSettingError


@dataclass(frozen=True)
class TrainSettings:
    epochs: float = 3.0
    learning_rate: float = 2e-3
    batch_size: int = 16  # per device (per process under DDP)
    warmup: float = 0.1  # share of steps with a linear warmup, then linear decay to 0
    weight_decay: float = 0.01
    max_length: int = 64  # tokens per example, longer ones are truncated
    gradient_checkpointing: bool = False  # trade compute for memory on long inputs
    early_stopping_patience: int = 2  # epochs without eval improvement before stopping (0 = off)
    seed: int = 0

    def check(self) -> None:
        """Raise BadSettingError for values training cannot use."""
        if not 0 < self.epochs <= 100:
            raise BadSettingError("Epochs must be between 0 and 100.")
        if not 0 < self.learning_rate <= 1:
            raise BadSettingError("The learning rate must be above 0 and at most 1 (try 1e-4 to 5e-3).")
        if not 1 <= self.batch_size <= 4096 or not 8 <= self.max_length <= 32768:
            raise BadSettingError("Batch size must be 1-4096 and max length 8-32768 tokens.")
        if not 0 <= self.warmup < 1:
            raise BadSettingError("Warmup is a share of the steps, between 0 and 1.")


@dataclass
class Progress(TrainerCallback):
    """Loss and eval metrics as they come (read from another thread), and a Stop that ends training."""

    stop: threading.Event = field(default_factory=threading.Event)
    points: list[dict[str, float]] = field(default_factory=list)  # {"step", "epoch", name: value}
    step: int = 0
    total_steps: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        self.total_steps = state.max_steps

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        self.step = state.global_step
        if self.stop.is_set():
            control.should_training_stop = True

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        values = {k: float(v) for k, v in (logs or {}).items() if k in ("loss", "eval_loss", "eval_accuracy",
                                                                         "eval_macro_f1")}
        if values:
            with self.lock:
                self.points.append({"step": float(state.global_step), "epoch": float(state.epoch or 0), **values})

    def snapshot(self) -> list[dict[str, float]]:
        with self.lock:
            return list(self.points)

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0


def mixed_precision() -> dict[str, bool]:
    """bf16 where the GPU has it, else fp16 on CUDA; never on CPU (slower there, and fp16 unsupported)."""
    if not torch.cuda.is_available():
        return {"bf16": False, "fp16": False}
    bf16 = torch.cuda.is_bf16_supported()
    return {"bf16": bf16, "fp16": not bf16}


def training_arguments(settings: TrainSettings, work_dir: Path, evaluate: bool) -> TrainingArguments:
    """Linear warmup + decay, eval each epoch when evaluating, no checkpoints, DDP-ready, no reporting."""
    per_epoch: dict[str, Any] = {"eval_strategy": "no"}
    if evaluate:
        # No checkpoints / load_best_model_at_end: Trainer's reload skips DeepSeek's fused MoE experts
        # (saved per expert), silently mixing epochs. Early stopping keeps the last model, <= patience past best.
        per_epoch = {"eval_strategy": "epoch", "metric_for_best_model": "eval_loss", "greater_is_better": False}
    return TrainingArguments(
        output_dir=str(work_dir), num_train_epochs=settings.epochs, learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size, per_device_eval_batch_size=max(settings.batch_size, 32),
        lr_scheduler_type="linear", warmup_steps=settings.warmup, weight_decay=settings.weight_decay,
        activation_checkpointing=settings.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},  # frozen embeddings: reentrant would lose grads
        logging_steps=5, logging_first_step=True, report_to="none", disable_tqdm=True, seed=settings.seed,
        data_seed=settings.seed, save_strategy="no", ddp_find_unused_parameters=False,
        dataloader_num_workers=0, use_cpu=not torch.cuda.is_available(),  # CPU-only: torchrun gives gloo DDP
        **mixed_precision(), **per_epoch,
    )


def training_callbacks(settings: TrainSettings, progress: TrainerCallback | None) -> list[TrainerCallback]:
    """Progress/Stop reporting, plus early stopping when the settings ask for it."""
    callbacks: list[TrainerCallback] = [progress or Progress()]
    if settings.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=settings.early_stopping_patience))
    return callbacks
