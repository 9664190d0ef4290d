"""Captioning at batch 1: images/s and time to first token, the app's path vs raw processor + generate.

Run: .venv/bin/python -m bench.caption [--model bundled/deepseek-vl-tiny] [--images 20] [--runs 3]
     .venv/bin/python -m bench.caption --batch-sizes 1 8   (the batch path: see caption_batches.py)
     .venv/bin/python -m bench.caption --realsize   (deepseek-vl-1.3b-chat size, random weights: caption_realsize.py)
App path: a PNG file -> load_image -> Service.stream (registry model, chat template, streamer thread, Stop).
Raw path: the PIL image -> processor.apply_chat_template + processor(images, text) -> generate with a streamer.
Both measure time to the first non-empty text delta (what a user sees) and to the whole caption; ratios are
app / raw, measured in this one run, interleaved so drift hits both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import TextIteratorStreamer  # noqa: E402

from bench.caption_batches import heldout_image_files  # noqa: E402
from core.config import LimitsConfig  # noqa: E402
from core.generation.images import load_image  # noqa: E402
from core.generation.sampling import SamplingParams  # noqa: E402
from core.generation.vision import STYLE_PROMPTS, VisionRequest  # noqa: E402
from core.models.catalog import default_catalog  # noqa: E402
from core.models.hardware import detect_hardware  # noqa: E402
from core.serving.registry import ModelRegistry  # noqa: E402
from core.serving.service import Service, TextDelta  # noqa: E402

Timing = tuple[float, float]  # (seconds to first text, seconds to the whole caption)


def app_path(service: Service, model_id: str, precision: str, path: Path, params: SamplingParams) -> Timing:
    start, first = time.perf_counter(), None
    request = VisionRequest(load_image(path, LimitsConfig()).image, style="detailed")
    for event in service.stream(request, model_id, precision, params):
        if isinstance(event, TextDelta) and event.text and first is None:
            first = time.perf_counter() - start
    return first or 0.0, time.perf_counter() - start


def raw_path(loaded, path: Path, params: SamplingParams) -> Timing:
    start, first = time.perf_counter(), None
    image = Image.open(path).convert("RGB")
    chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": STYLE_PROMPTS["detailed"]}]}]
    text = loaded.processor.apply_chat_template(chat, add_generation_prompt=True)
    inputs = loaded.processor(images=[image], text=text, return_tensors="pt")
    streamer = TextIteratorStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)

    def run() -> None:
        with torch.inference_mode():
            loaded.model.generate(**inputs, **params.generate_kwargs(), streamer=streamer)

    thread = threading.Thread(target=run)
    thread.start()
    for delta in streamer:
        if delta and first is None:
            first = time.perf_counter() - start
    thread.join()
    return first or 0.0, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="bundled/deepseek-vl-tiny")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--images", type=int, default=None, help="default 20 (2 with --realsize)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                        help="compare these batch sizes through the batch path (bench/caption_batches.py)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads with --batch-sizes")
    parser.add_argument("--realsize", action="store_true",
                        help="a random-weight DeepSeek-VL at deepseek-vl-1.3b-chat's size instead of --model")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], help="with --realsize")
    parser.add_argument("--new-tokens", type=int, default=8, help="with --realsize")
    parser.add_argument("--text-layers", type=int, default=24, help="with --realsize")
    parser.add_argument("--vision-layers", type=int, default=24, help="with --realsize")
    args = parser.parse_args()
    if args.realsize:
        from bench.caption_realsize import run_realsize  # builds a multi-GB model: only when asked

        args.images = args.images or 2
        run_realsize(args)
        return
    args.images = args.images or 20
    if args.batch_sizes:
        from bench.caption_batches import run_batches

        run_batches(args)
        return
    registry = ModelRegistry(default_catalog(), detect_hardware())
    loaded = registry.get(args.model, args.precision)
    service = Service(registry, LimitsConfig())
    params = SamplingParams(max_new_tokens=40, temperature=0, repetition_penalty=1.0)
    paths = heldout_image_files(args.images, "bench-caption-")
    app_path(service, args.model, args.precision, paths[0], params), raw_path(loaded, paths[0], params)  # warm-up
    results: dict[str, list[Timing]] = {"app": [], "raw": []}
    for _ in range(args.runs):
        for path in paths:
            results["app"].append(app_path(service, args.model, args.precision, path, params))
            results["raw"].append(raw_path(loaded, path, params))
    ttft = {k: statistics.median(t[0] for t in v) for k, v in results.items()}
    rate = {k: len(v) / sum(t[1] for t in v) for k, v in results.items()}
    print(f"{args.model} {args.precision} on {loaded.device}, batch 1, {len(paths)} images x {args.runs} runs, "
          f"greedy, detailed captions")
    for name in ("app", "raw"):
        print(f"  {name:3s}: {rate[name]:6.2f} images/s · median time to first text {ttft[name] * 1000:7.1f} ms")
    print(f"  ratio app/raw: images/s {rate['app'] / rate['raw']:.3f} · time to first text "
          f"{ttft['app'] / ttft['raw']:.3f}")


if __name__ == "__main__":
    main()
