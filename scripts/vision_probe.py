"""Probe stage 1 alone: how fast the vision tower learns each attribute, on training and independent drawings.

    nice -n 10 python scripts/vision_probe.py [--steps N] [--varied-share S] [--patch-size P] [--image-size I]
        [--ramp-steps R] [--fresh F --pool P] [--dense-weight W] [--lone-share L] [--plain-share B]
        [--vision-width D] [--vision-mlp M] [--vision-layers K] [--dark-share D] [--outline-share O]
        [--thin-outlines]

Trains the vision tower + aligner through throwaway linear heads (as train_vision_model.pretrain_vision
does) and prints, every --eval-every steps, the mean-pooled head's shape accuracy on the last training
batches and the shape and colour accuracy of both heads on 200 independent drawings
(tests/independent_drawings.py, seeds from 20000: not the test's seeds). A diagnostic only: the
training script never imports the independent drawings.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.shapes import ATTRIBUTE_VALUES  # noqa: E402
from scripts.train_vision_model import (  # noqa: E402
    IGNORED,
    ImageStream,
    attribute_heads,
    build_model,
    build_processor,
    build_tokenizer,
)
from tests.independent_drawings import drawings  # noqa: E402

PROBE_SEED = 20000


def pooled(model, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    tokens = model.model.get_image_features(pixels).pooler_output  # (batch, tokens, hidden)
    return {"slots": tokens.flatten(1), "mean": tokens.mean(1)}


@torch.no_grad()
def independent_accuracy(model, heads, pixels: torch.Tensor, truth: dict[str, torch.Tensor]) -> dict:
    """Shape and colour accuracy of both heads on the independent drawings."""
    return {f"{pool}_{a}": round((heads[f"{pool}_{a}"](f).argmax(-1) == truth[a]).float().mean().item(), 3)
            for pool, f in pooled(model, pixels).items() for a in truth}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, kind, default in (("--steps", int, 1000), ("--varied-share", float, 1.0), ("--patch-size", int, 16),
                                ("--image-size", int, 64), ("--lr", float, 2e-3), ("--batch-size", int, 32),
                                ("--shape-weight", float, 1.0), ("--lone-share", float, 0.3),
                                ("--plain-share", float, 0.3), ("--ramp-steps", int, 0), ("--vision-mlp", int, 256),
                                ("--vision-layers", int, 3), ("--vision-width", int, 128), ("--fresh", int, 0),
                                ("--pool", int, 4096), ("--dense-weight", float, 0.0), ("--eval-every", int, 250),
                                ("--seed", int, 0), ("--dark-share", float, 0.2), ("--outline-share", float, 0.3)):
        parser.add_argument(name, type=kind, default=default)
    parser.add_argument("--thin-outlines", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    processor = build_processor(build_tokenizer(args.seed), args.image_size, args.patch_size)
    model = build_model(processor.tokenizer, args.image_size, args.patch_size,
                        {"intermediate_size": args.vision_mlp, "num_hidden_layers": args.vision_layers,
                         "hidden_size": args.vision_width})
    held_out = drawings(200, PROBE_SEED)
    pixels = processor.image_processor([d.image for d in held_out], return_tensors="pt")["pixel_values"]
    truth = {a: torch.tensor([ATTRIBUTE_VALUES[a].index(getattr(d, a)) for d in held_out]) for a in ("shape", "colour")}
    heads = attribute_heads(model, processor, dense=bool(args.dense_weight))
    params = [*model.model.vision_model.parameters(), *model.model.aligner.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 50) * max(0.1, 1.0 - s / args.steps))
    stream = ImageStream(processor, random.Random(args.seed + 3), argparse.Namespace(
        vision_varied_share=args.varied_share, vision_lone_share=args.lone_share,
        vision_plain_share=args.plain_share, vision_fresh=args.fresh, vision_pool=args.pool,
        dark_share=args.dark_share, outline_share=args.outline_share, thin_outlines=args.thin_outlines))
    hits, cpu = [], time.process_time()
    for step in range(1, args.steps + 1):
        jitter = min(1.0, step / args.ramp_steps) if args.ramp_steps else 1.0  # position curriculum
        scenes, batch, dense = stream.batch(args.batch_size, jitter)
        tokens = model.model.get_image_features(batch).pooler_output  # (batch, tokens, hidden)
        features = {"slots": tokens.flatten(1), "mean": tokens.mean(1)}
        losses = []
        if args.dense_weight and (dense != IGNORED).any():
            logits = heads["dense"](tokens).flatten(0, 1)
            losses.append(args.dense_weight * torch.nn.functional.cross_entropy(logits, dense.flatten(),
                                                                                 ignore_index=IGNORED))
        for attribute, values in ATTRIBUTE_VALUES.items():
            target = torch.tensor([values.index(getattr(s, attribute)) for s in scenes])
            weight = args.shape_weight if attribute == "shape" else 1.0
            for pool, f in features.items():
                logits = heads[f"{pool}_{attribute}"](f)
                losses.append(weight * torch.nn.functional.cross_entropy(logits, target))
            if attribute == "shape":
                hits.append((logits.argmax(-1) == target).float().mean().item())  # the mean head
        sum(losses).backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if step % args.eval_every == 0 or step == args.steps:
            train_shape = sum(hits[-50:]) / len(hits[-50:])
            print(f"step {step}  train shape (mean head, last 50 batches) {train_shape:.3f}  independent "
                  f"{independent_accuracy(model, heads, pixels, truth)}  cpu {time.process_time() - cpu:.0f}s",
                  flush=True)


if __name__ == "__main__":
    main()
