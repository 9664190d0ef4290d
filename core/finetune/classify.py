"""Sequence classification on top of a causal LM: lower blocks frozen, Trainer does the rest (1 CPU to DDP)."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    EvalPrediction,
    Trainer,
    set_seed,
)

from core.errors import BadSettingError
from core.finetune.data import LabeledTexts
from core.finetune.freezing import FreezeReport, freeze_lower
from core.finetune.metrics import accuracy, macro_f1
from core.finetune.saving import read_manifest, save_atomically
from core.finetune.training import Progress, TrainSettings, training_arguments, training_callbacks
from core.models.construction import BUILDING

LABEL_MAP = "label_map.json"


@dataclass(frozen=True)
class ClassifyResult:
    out_dir: str
    labels: list[str]
    train_examples: int
    eval_examples: int
    baseline_accuracy: float  # always answering the majority label, on the held-out rows
    accuracy: float
    macro_f1: float
    eval_loss: float
    epochs_run: float
    stopped: bool  # ended by Stop rather than by the schedule or early stopping
    world_size: int  # processes that trained (DDP)
    freeze: dict[str, int]
    history: list[dict[str, float]]  # one row per epoch: epoch, eval_loss, eval_accuracy, eval_macro_f1

    def summary(self) -> str:
        return (f"accuracy {self.accuracy:.1%} (majority baseline {self.baseline_accuracy:.1%}) · macro-F1 "
                f"{self.macro_f1:.3f} · {self.epochs_run:g} epochs · {self.train_examples} train / "
                f"{self.eval_examples} held-out rows")


class TextDataset(torch.utils.data.Dataset):
    """Tokenized texts with their label ids (padding happens per batch in the collator)."""

    def __init__(self, data: LabeledTexts, tokenizer: Any, max_length: int) -> None:
        self.encodings = tokenizer(list(data.texts), truncation=True, max_length=max_length)
        self.labels = data.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.encodings["input_ids"][i], "attention_mask": self.encodings["attention_mask"][i],
                "labels": self.labels[i]}


def load_for_classification(source: str, label_names: tuple[str, ...]) -> tuple[Any, Any]:
    """(model with a fresh classification head, tokenizer) for a causal LM checkpoint."""
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    with BUILDING:
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=len(label_names), id2label=dict(enumerate(label_names)),
            label2id={name: i for i, name in enumerate(label_names)}, pad_token_id=tokenizer.pad_token_id,
            dtype=torch.float32)  # fp32 master weights; autocast does bf16/fp16 where the GPU has it
    return model, tokenizer


def train_classifier(data: LabeledTexts, source: str, out_dir: str | Path, settings: TrainSettings = TrainSettings(),
                     freeze_fraction: float = 0.8, eval_fraction: float = 0.2,
                     progress: Progress | None = None) -> ClassifyResult:
    """Fine-tune `source` to predict data's labels; save model + label map to out_dir all-or-nothing."""
    settings.check()
    if not 0 < eval_fraction < 1:
        raise BadSettingError("The held-out share must be between 0 and 1.")
    set_seed(settings.seed)
    train, held = data.split(eval_fraction, settings.seed)
    if len(held) == 0 or len(train) == 0:
        raise BadSettingError("Too few rows to hold some out for evaluation: add rows (at least 2 per label).")
    model, tokenizer = load_for_classification(source, data.label_names)
    report = freeze_lower(model, freeze_fraction)
    out = Path(out_dir)
    work = out.parent / f".{out.name}.checkpoints"
    callbacks = training_callbacks(settings, progress)
    trainer = Trainer(model=model, args=training_arguments(settings, work, evaluate=True),
                      train_dataset=TextDataset(train, tokenizer, settings.max_length),
                      eval_dataset=TextDataset(held, tokenizer, settings.max_length),
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=_metrics_for(data),
                      callbacks=callbacks)
    trainer.train()
    final = trainer.evaluate()
    result = _result(trainer, final, out, train, held, report, callbacks[0])
    if trainer.is_world_process_zero():
        _save(trainer, tokenizer, out, result, source)
        shutil.rmtree(work, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return result


def _metrics_for(data: LabeledTexts) -> Any:
    classes = len(data.label_names)

    def compute(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        predicted, labels = np.asarray(logits).argmax(-1), np.asarray(prediction.label_ids)
        return {"accuracy": accuracy(predicted, labels), "macro_f1": macro_f1(predicted, labels, classes)}

    return compute


def _result(trainer: Trainer, final: dict[str, float], out: Path, train: LabeledTexts, held: LabeledTexts,
            report: FreezeReport, progress: Progress) -> ClassifyResult:
    history = [{k: float(v) for k, v in row.items() if k in ("epoch", "eval_loss", "eval_accuracy", "eval_macro_f1")}
               for row in trainer.state.log_history if "eval_accuracy" in row]
    return ClassifyResult(
        str(out.resolve()), list(train.label_names), len(train), len(held), held.majority_accuracy(),
        float(final["eval_accuracy"]), float(final["eval_macro_f1"]), float(final["eval_loss"]),
        round(float(trainer.state.epoch or 0), 3), progress.stop.is_set(), trainer.args.world_size,
        asdict(report), history[:-1] if len(history) > 1 else history)


def _save(trainer: Trainer, tokenizer: Any, out: Path, result: ClassifyResult, source: str) -> None:
    def write(folder: Path) -> None:
        trainer.model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        labels = {"id2label": dict(enumerate(result.labels)), "label2id": {n: i for i, n in enumerate(result.labels)}}
        (folder / LABEL_MAP).write_text(json.dumps(labels, indent=2), encoding="utf-8")

    save_atomically(out, write, {"task": "classify", "base_model": source, "metrics": asdict(result)})


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float


def classify_texts(folder: str | Path, texts: list[str]) -> list[Prediction]:
    """Predict labels with a saved classifier (CPU is fine for a handful of texts)."""
    read_manifest(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=512)
    with torch.no_grad():
        probs = model(**batch).logits.softmax(-1)
    best = probs.max(-1)
    return [Prediction(model.config.id2label[int(i)], float(p)) for p, i in zip(best.values, best.indices, strict=True)]
