"""The real-size caption path offline: a random-weight DeepSeek-VL at deepseek-vl-1.3b-chat's configuration.

Run: .venv/bin/python -m bench.caption --realsize [--precisions fp32 bf16] [--images 2] [--new-tokens 8]
Builds the model once into $PLAYGROUND_CACHE/realsize (scripts/realsize_vl.py; ~4 GB in bf16), points the
catalog's deepseek-community/deepseek-vl-1.3b-chat at it, and captions PNG files through the app's path
(load_image -> Service.stream -> stream_caption: chat template, processor, 576 image tokens, generate, streamer).
Per precision: load seconds, resident weights, images/s, median time to first token, peak memory.
Random weights give noise captions, so every caption runs to --new-tokens; speed and memory are the real ones.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.peak_memory import PeakMemory
from core.config import LimitsConfig
from core.generation.images import load_image
from core.generation.sampling import SamplingParams
from core.generation.vision import VisionRequest
from core.models.catalog import default_catalog
from core.models.hardware import detect_hardware
from core.models.memory import format_bytes
from core.serving.registry import ModelRegistry
from core.serving.service import Service, TextDelta
from scripts.realsize_vl import MODEL_ID, build, cache_folder
from scripts.shapes import draw_scene
from scripts.vision_eval import heldout_scenes


def caption_files(service: Service, precision: str, paths: list[Path], params: SamplingParams) -> list[float]:
    """Caption each file at batch 1; the seconds to each caption's first token."""
    firsts = []
    for path in paths:
        start, first = time.perf_counter(), None
        request = VisionRequest(load_image(path, LimitsConfig()).image, style="detailed")
        for event in service.stream(request, MODEL_ID, precision, params):
            if isinstance(event, TextDelta) and event.text and first is None:
                first = time.perf_counter() - start
        firsts.append(first or time.perf_counter() - start)
    return firsts


def run_realsize(args: argparse.Namespace) -> None:
    """Build (once), then caption args.images images at each precision and print the figures."""
    started = time.perf_counter()
    folder = build(cache_folder(args.text_layers, args.vision_layers), args.text_layers, args.vision_layers)
    print(f"model: {folder} (ready after {time.perf_counter() - started:.0f} s)")
    registry = ModelRegistry(default_catalog({MODEL_ID: str(folder)}), detect_hardware())
    service = Service(registry, LimitsConfig(stream_timeout_s=7200))  # a full-size CPU prefill can take many minutes
    params = SamplingParams(max_new_tokens=args.new_tokens, temperature=0, repetition_penalty=1.0)
    images = Path(tempfile.mkdtemp(prefix="bench-realsize-"))
    paths = []
    for i, (scene, seed, _) in enumerate(heldout_scenes(args.images, 5)):
        paths.append(images / f"{i}.png")
        draw_scene(scene, 384, seed).save(paths[-1])
    print(f"{MODEL_ID} stand-in, {args.text_layers} text / {args.vision_layers} vision layers, random weights, "
          f"on {registry.hardware.describe()}; batch 1, {len(paths)} images, {args.new_tokens} new tokens each")
    for precision in args.precisions:
        with PeakMemory() as peak:
            load_start = time.perf_counter()
            loaded = registry.get(MODEL_ID, precision)
            load_s = time.perf_counter() - load_start
            start = time.perf_counter()
            firsts = caption_files(service, precision, paths, params)
            elapsed = time.perf_counter() - start
        print(f"  {precision:5s}: {len(paths) / elapsed:6.3f} images/s · median first token "
              f"{statistics.median(firsts):6.2f} s · load {load_s:5.1f} s · weights "
              f"{format_bytes(loaded.memory_bytes)} · peak {peak.kind} {format_bytes(peak.bytes)}", flush=True)
        registry.unload(loaded.key)
        del loaded
