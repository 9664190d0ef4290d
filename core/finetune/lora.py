"""LoRA adapters for the chat models, trained on chat messages through the model's own chat template."""

from __future__ import annotations

import math
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, set_seed

from core.errors import BadSettingError
from core.finetune.data import Chat
from core.finetune.saving import save_atomically
from core.finetune.training import Progress, TrainSettings, training_arguments, training_callbacks
from core.models.construction import BUILDING

IGNORE = -100  # label id the loss skips (prompt tokens, padding)


@dataclass(frozen=True)
class LoraShape:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0  # peft wraps fused MoE expert weights too, which refuses dropout
    target_modules: str = "all-linear"  # every nn.Linear but the output head (DeepSeek's fused experts are not Linear)

    def check(self) -> None:
        if not 1 <= self.rank <= 1024 or self.alpha < 1 or not 0 <= self.dropout < 1:
            raise BadSettingError("LoRA rank must be 1-1024, alpha at least 1, dropout in [0, 1).")


@dataclass(frozen=True)
class LoraResult:
    out_dir: str
    base_model: str
    train_examples: int
    eval_examples: int
    eval_loss_before: float  # held-out answer loss of the base model
    eval_loss: float  # ... and with the adapter
    trainable_params: int
    total_params: int
    epochs_run: float
    stopped: bool
    world_size: int
    history: list[dict[str, float]]

    def summary(self) -> str:
        return (f"held-out answer perplexity {math.exp(self.eval_loss_before):.2f} -> {math.exp(self.eval_loss):.2f} · "
                f"{self.trainable_params:,} adapter parameters · {self.epochs_run:g} epochs")


class ChatDataset(torch.utils.data.Dataset):
    """Chats tokenized through the chat template; only the final answer's tokens carry labels."""

    def __init__(self, chats: list[Chat], tokenizer: Any, max_length: int) -> None:
        self.items = [_encode(chat, tokenizer, max_length) for chat in chats]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.items[i]


def _encode(chat: Chat, tokenizer: Any, max_length: int) -> dict[str, list[int]]:
    prompt = tokenizer.apply_chat_template(list(chat[:-1]), tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(list(chat), tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    labels = [IGNORE] * min(len(prompt_ids), len(ids)) + ids[len(prompt_ids):]
    keep = ids[-max_length:], labels[-max_length:]  # keep the answer when a long prompt must be cut
    return {"input_ids": keep[0], "labels": keep[1]}


def collate(pad_id: int) -> Any:
    """Right-pad a batch; padding gets no attention and no loss."""

    def pad(batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(item["input_ids"]) for item in batch)
        ids = [item["input_ids"] + [pad_id] * (width - len(item["input_ids"])) for item in batch]
        labels = [item["labels"] + [IGNORE] * (width - len(item["labels"])) for item in batch]
        mask = [[1] * len(item["input_ids"]) + [0] * (width - len(item["input_ids"])) for item in batch]
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}

    return pad


def train_lora(chats: list[Chat], source: str, out_dir: str | Path, settings: TrainSettings = TrainSettings(),
               shape: LoraShape = LoraShape(), eval_fraction: float = 0.1,
               progress: Progress | None = None) -> LoraResult:
    """Train a LoRA adapter for `source` on chats; save it (with its manifest) to out_dir all-or-nothing."""
    settings.check()
    shape.check()
    set_seed(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    shuffled = random.Random(settings.seed).sample(chats, len(chats))
    held_n = max(1, round(len(chats) * eval_fraction)) if len(chats) >= 4 else 0
    train, held = shuffled[held_n:], shuffled[:held_n] or shuffled[:1]
    with BUILDING:
        base = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", r=shape.rank, lora_alpha=shape.alpha,
                                            lora_dropout=shape.dropout, target_modules=shape.target_modules))
    out = Path(out_dir)
    work = out.parent / f".{out.name}.work"
    callbacks = training_callbacks(settings, progress)
    trainer = Trainer(model=model, args=training_arguments(settings, work, evaluate=True),
                      train_dataset=ChatDataset(train, tokenizer, settings.max_length),
                      eval_dataset=ChatDataset(held, tokenizer, settings.max_length),
                      data_collator=collate(tokenizer.pad_token_id), callbacks=callbacks)
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    result = _result(trainer, out, source, len(train), len(held), before, after, callbacks[0])
    if trainer.is_world_process_zero():
        save_atomically(out, lambda folder: _write(trainer.model, tokenizer, folder),
                        {"task": "lora", "base_model": source, "metrics": asdict(result)})
        shutil.rmtree(work, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return result


def _write(model: Any, tokenizer: Any, folder: Path) -> None:
    model.save_pretrained(folder)  # adapter_config.json + adapter_model.safetensors only
    tokenizer.save_pretrained(folder)


def _result(trainer: Trainer, out: Path, source: str, n_train: int, n_held: int, before: float, after: float,
            progress: Progress) -> LoraResult:
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    history = [{k: float(v) for k, v in row.items() if k in ("epoch", "eval_loss")}
               for row in trainer.state.log_history if "eval_loss" in row]
    return LoraResult(str(out.resolve()), source, n_train, n_held, float(before), float(after), trainable, total,
                      round(float(trainer.state.epoch or 0), 3), progress.stop.is_set(), trainer.args.world_size,
                      history[:-1] if len(history) > 1 else history)  # train() restarts the log: no "before" row
