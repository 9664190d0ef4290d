"""One-token attention on the CPU: PyTorch's flash-attention kernel (transformers' sdpa) vs the app's matmuls.

Run: flock /tmp/bigmem.lock .venv/bin/python -m bench.decode_attention [--layers 6] [--contexts 32 1000 4000]
First one attention call at R1-Distill-1.5B's shape (12 query heads over 2 key/value heads, head dim 128, bf16) at
each context length; then greedy decode tok/s of bench/realsize_models.py's Qwen2 at that width (int4, the app's
loader) after a prompt of each length, with transformers' own sdpa_attention_forward and with
core/models/decode_attention.py, interleaved in one process; prints each ratio.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AttentionInterface  # noqa: E402
from transformers.integrations.sdpa_attention import sdpa_attention_forward  # noqa: E402

from bench.realsize_models import MODELS, checkpoint, entry  # noqa: E402
from bench.threads import on_fresh_thread  # noqa: E402
from core.models import decode_attention  # noqa: E402
from core.models.catalog import Catalog  # noqa: E402
from core.models.hardware import detect_hardware  # noqa: E402
from core.serving.registry import ModelRegistry  # noqa: E402

CHOICES = {"sdpa": sdpa_attention_forward, "matmuls": decode_attention.attention}


class Shape(torch.nn.Module):
    num_key_value_groups = 6
    is_causal = True


def per_call_us(attention: Callable, context: int, calls: int = 300) -> float:
    query = torch.randn(1, 12, 1, 128, dtype=torch.bfloat16)
    key, value = (torch.randn(1, 2, context, 128, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(10):
        attention(Shape(), query, key, value, None, scaling=128 ** -0.5)
    start = time.perf_counter()
    for _ in range(calls):
        attention(Shape(), query, key, value, None, scaling=128 ** -0.5)
    return (time.perf_counter() - start) / calls * 1e6


def decode_rate(model: torch.nn.Module, context: int, steps: int = 10) -> float:
    ids = torch.arange(1000, 1000 + context)[None]
    with torch.inference_mode():
        out = model(ids, use_cache=True)
        cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        for step in range(2 + steps):
            if step == 2:
                start = time.perf_counter()
            out = model(token, past_key_values=cache, use_cache=True)
            token = out.logits[:, -1:].argmax(-1)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--contexts", type=int, nargs="+", default=[32, 1000, 4000])
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    print("one attention call, 12 query heads over 2 key/value heads, bf16:")
    for context in args.contexts:
        us = {name: on_fresh_thread(lambda f=fn, c=context: per_call_us(f, c)) for name, fn in CHOICES.items()}
        print(f"  context {context:5d}: sdpa {us['sdpa']:7.0f} us, matmuls {us['matmuls']:5.0f} us "
              f"(matmuls {us['sdpa'] / us['matmuls']:.1f}x as fast)")
    spec = next(m for m in MODELS if m.name.startswith("qwen2"))
    model_entry = entry(spec, checkpoint(spec, args.layers))
    registry = ModelRegistry(Catalog((model_entry,)), detect_hardware())
    model = on_fresh_thread(lambda: registry.get(model_entry.model_id, "int4")).model
    print(f"greedy decode, {model_entry.model_id} at {args.layers} layers, int4, best of 2 interleaved rounds:")
    try:
        for context in args.contexts:
            best = dict.fromkeys(CHOICES, 0.0)
            for _ in range(2):
                for name, fn in CHOICES.items():
                    AttentionInterface.register("sdpa", fn)
                    best[name] = max(best[name], on_fresh_thread(lambda c=context: decode_rate(model, c)))
            print(f"  context {context:5d}: sdpa {best['sdpa']:6.2f} tok/s, matmuls {best['matmuls']:6.2f} tok/s "
                  f"({best['matmuls'] / best['sdpa']:.2f}x)")
    finally:
        decode_attention.install()


if __name__ == "__main__":
    main()
