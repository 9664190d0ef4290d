"""Batch captioning: images/s at each batch size through the app's batch path, and the ratio to batch 1.

Run: .venv/bin/python -m bench.caption --batch-sizes 1 8 [--images 32] [--runs 3] [--threads 1]
Path: PNG files -> collect_items (load_image per file) -> caption_many (one generate per batch of pixel_values).
Batch sizes are interleaved run by run so drift hits them alike; ratios are measured in this one run.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import torch

from core.config import LimitsConfig
from core.generation.batch_caption import caption_many
from core.generation.image_batch import collect_items
from core.generation.sampling import SamplingParams
from core.models.catalog import default_catalog
from core.models.hardware import detect_hardware
from core.serving.registry import ModelRegistry
from scripts.shapes import draw_scene
from scripts.vision_eval import heldout_scenes


def heldout_image_files(count: int, prefix: str) -> list[Path]:
    """count held-out shape drawings (never trained on) saved as PNG files in a new temp folder."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    paths = []
    for i, (scene, seed, side) in enumerate(heldout_scenes(count, 5)):
        paths.append(folder / f"{i}.png")
        draw_scene(scene, side, seed).save(paths[-1])
    return paths

def caption_files(loaded, paths: list[Path], batch_size: int, params: SamplingParams) -> tuple[float, int]:
    """(seconds, caption tokens) to caption every file at this batch size, loading included."""
    start = time.perf_counter()
    items = collect_items(paths, LimitsConfig())
    rows = [row for batch in caption_many(loaded, items, "detailed", params, threading.Event(), batch_size)
            for row in batch]
    return time.perf_counter() - start, sum(r.tokens for r in rows)


def run_batches(args: argparse.Namespace) -> None:
    """Print images/s per batch size and each size's ratio to the first."""
    if args.threads:
        torch.set_num_threads(args.threads)
    registry = ModelRegistry(default_catalog(), detect_hardware())
    loaded = registry.get(args.model, args.precision)
    params = SamplingParams(max_new_tokens=40, temperature=0, repetition_penalty=1.0)
    paths = heldout_image_files(args.images, "bench-batches-")
    for size in args.batch_sizes:  # warm-up
        caption_files(loaded, paths[:size], size, params)
    seconds = {size: 0.0 for size in args.batch_sizes}
    tokens = dict.fromkeys(args.batch_sizes, 0)
    for _ in range(args.runs):
        for size in args.batch_sizes:
            took, made = caption_files(loaded, paths, size, params)
            seconds[size] += took
            tokens[size] += made
    print(f"{args.model} {args.precision} on {loaded.device}, {len(paths)} images x {args.runs} runs, greedy, "
          f"detailed captions, app batch path, {torch.get_num_threads()} torch threads")
    first = args.batch_sizes[0]
    base = len(paths) * args.runs / seconds[first]
    for size in args.batch_sizes:
        rate = len(paths) * args.runs / seconds[size]
        print(f"  batch {size:2d}: {rate:7.2f} images/s · {tokens[size] / seconds[size]:7.1f} caption tokens/s · "
              f"{rate / base:5.2f}x batch {first}")
