"""Where a decode step's time goes at real width: torch.profiler over greedy decode steps, per precision.

Run: flock /tmp/bigmem.lock nice -n 10 .venv/bin/python -m bench.realsize_profile [--models qwen2]
     [--precisions fp32 int8 int4] [--steps 8] [--top 12]
Prints per precision the decode tok/s of the profiled steps and the ops by self CPU time, with the dtypes they
saw, so a slow quantized row shows which op (matmul kernel, dtype conversion, dequantization) costs it.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from bench.realsize_models import MODELS, checkpoint, entry  # noqa: E402
from core.models.catalog import Catalog  # noqa: E402
from core.models.hardware import detect_hardware  # noqa: E402
from core.models.loading import LoadedModel  # noqa: E402
from core.serving.registry import ModelRegistry  # noqa: E402


def decode_steps(loaded: LoadedModel, steps: int) -> tuple[float, profile]:
    """(tok/s, profiler) over `steps` greedy decode steps after a 32-token prompt (a warm-up step first)."""
    model = loaded.model
    ids = torch.arange(1000, 1032)[None]
    with torch.inference_mode():
        out = model(ids, use_cache=True)
        cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        out = model(token, past_key_values=cache, use_cache=True)  # warm-up
        token = out.logits[:, -1:].argmax(-1)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            start = time.perf_counter()
            for _ in range(steps):
                out = model(token, past_key_values=cache, use_cache=True)
                token = out.logits[:, -1:].argmax(-1)
            seconds = time.perf_counter() - start
    return steps / seconds, prof


def op_table(prof: profile, top: int) -> list[str]:
    """The `top` ops by self CPU time, each with the input shapes/dtypes it saw most often."""
    shapes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for event in prof.events():
        if event.input_shapes:
            shapes[event.name][str(event.input_shapes)[:70]] += 1
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    total = sum(e.self_cpu_time_total for e in prof.key_averages()) or 1
    lines = []
    for e in rows:
        common = max(shapes[e.key].items(), key=lambda kv: kv[1])[0] if shapes[e.key] else ""
        lines.append(f"  {100 * e.self_cpu_time_total / total:5.1f} %  {e.count:5d} calls  {e.key:42s} {common}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["qwen2"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8", "int4"])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    for spec in [m for m in MODELS if any(m.name.startswith(p) for p in args.models)]:
        model = entry(spec, checkpoint(spec))
        registry = ModelRegistry(Catalog((model,)), detect_hardware())
        print(f"\n## {model.model_id} ({os.getloadavg()[0]:.1f} load)")
        for precision in args.precisions:
            loaded = registry.get(model.model_id, precision)
            rate, prof = decode_steps(loaded, args.steps)
            print(f"{precision}: {rate:.2f} tok/s decode over {args.steps} steps · {loaded.kernel or loaded.dtype}")
            print("\n".join(op_table(prof, args.top)))
            registry.unload(loaded.key)


if __name__ == "__main__":
    main()
