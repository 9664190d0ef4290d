"""python -m core.finetune classify|lora ...: the same command on 1 CPU, under torchrun, or accelerate launch."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from core.errors import PlaygroundError
from core.finetune.training import TrainSettings


def parser() -> argparse.ArgumentParser:
    """Arguments of both sub-commands (defaults = TrainSettings)."""
    root = argparse.ArgumentParser(prog="python -m core.finetune", description="Fine-tune a DeepSeek model.")
    commands = root.add_subparsers(dest="command", required=True)
    classify = commands.add_parser("classify", help="sequence classifier from a CSV/JSONL of texts and labels")
    classify.add_argument("--text-col", required=True)
    classify.add_argument("--label-col", required=True)
    classify.add_argument("--freeze", type=float, default=0.8, help="share of lower blocks to freeze (0-1)")
    classify.add_argument("--eval-fraction", type=float, default=0.2, help="rows held out for evaluation")
    lora = commands.add_parser("lora", help="LoRA adapter from a JSONL of chat messages")
    lora.add_argument("--rank", type=int, default=8)
    lora.add_argument("--alpha", type=int, default=16)
    for sub, lr, length in ((classify, 2e-3, 64), (lora, 2e-3, 256)):
        sub.add_argument("--data", type=Path, required=True)
        sub.add_argument("--model", default="bundled/deepseek-v3-tiny", help="catalog id, Hub id or local folder")
        sub.add_argument("--out", type=Path, required=True)
        sub.add_argument("--epochs", type=float, default=3.0)
        sub.add_argument("--lr", type=float, default=lr)
        sub.add_argument("--batch-size", type=int, default=16, help="per process")
        sub.add_argument("--max-length", type=int, default=length)
        sub.add_argument("--warmup", type=float, default=0.1)
        sub.add_argument("--patience", type=int, default=2, help="epochs without improvement before stopping")
        sub.add_argument("--gradient-checkpointing", action="store_true")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--max-rows", type=int, default=200_000)
    return root


def resolve_source(model: str) -> str:
    """A catalog id (e.g. bundled/deepseek-v3-tiny) -> its folder or Hub id; anything else as given."""
    from core.errors import UnknownModelError
    from core.models.catalog import default_catalog

    try:
        return default_catalog().get(model).source
    except UnknownModelError:
        return model


def run(args: argparse.Namespace) -> dict[str, object]:
    """Train as asked; return the result as plain data."""
    from core.finetune.data import DataLimits

    settings = TrainSettings(epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size,
                             max_length=args.max_length, warmup=args.warmup, early_stopping_patience=args.patience,
                             gradient_checkpointing=args.gradient_checkpointing, seed=args.seed)
    limits = DataLimits(max_rows=args.max_rows)
    source = resolve_source(args.model)
    if args.command == "classify":
        from core.finetune.classify import train_classifier
        from core.finetune.data import load_labeled

        data = load_labeled(args.data, args.text_col, args.label_col, limits)
        return asdict(train_classifier(data, source, args.out, settings, args.freeze, args.eval_fraction))
    from core.finetune.data import load_chats
    from core.finetune.lora import LoraShape, train_lora

    chats = load_chats(args.data, limits)
    return asdict(train_lora(chats, source, args.out, settings, LoraShape(rank=args.rank, alpha=args.alpha)))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result = run(args)
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
