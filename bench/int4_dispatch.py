"""CPU int4 decode with torchao's linear (tensor-subclass dispatch), Int4PackedLinear (ATen's kernel called directly)
and Int4SiblingLinear (q, k and v in one such call).

Run: flock /tmp/bigmem.lock .venv/bin/python -m bench.int4_dispatch [--layers 28] [--rounds 3]
Loads bench/realsize_models.py's Qwen2 at R1-Distill-1.5B's width through the app's int4 loader, then times greedy
decode steps after a 32-token prompt with every int4 layer as a plain nn.Linear (torchao's dispatch), as
Int4PackedLinear, and as the app serves it (q, k and v as Int4SiblingLinear), in interleaved rounds in one process;
prints the best round of each and the ratios.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from bench.decode_attention import decode_rate  # noqa: E402
from bench.realsize_models import MODELS, checkpoint, entry  # noqa: E402
from bench.threads import on_fresh_thread  # noqa: E402
from core.models.catalog import Catalog  # noqa: E402
from core.models.hardware import detect_hardware  # noqa: E402
from core.quant.int4_linear import Int4PackedLinear  # noqa: E402
from core.quant.int4_siblings import Int4SiblingLinear  # noqa: E402
from core.serving.registry import ModelRegistry  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=28)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    spec = next(m for m in MODELS if m.name.startswith("qwen2"))
    model_entry = entry(spec, checkpoint(spec, args.layers))
    registry = ModelRegistry(Catalog((model_entry,)), detect_hardware())
    model = on_fresh_thread(lambda: registry.get(model_entry.model_id, "int4")).model
    layers = {m: type(m) for m in model.modules() if isinstance(m, Int4PackedLinear)}
    variants = {"torchao dispatch": lambda cls: nn.Linear, "Int4PackedLinear": lambda cls: Int4PackedLinear,
                "one q/k/v call": lambda cls: cls}
    best = dict.fromkeys(variants, 0.0)
    for _ in range(args.rounds):
        for name, class_for in variants.items():
            for layer, served in layers.items():
                layer.__class__ = class_for(served)
            best[name] = max(best[name], on_fresh_thread(lambda: decode_rate(model, 32, 12)))
    base = best["torchao dispatch"]
    rates = ", ".join(f"{name} {rate:.2f} tok/s ({rate / base:.3f}x)" for name, rate in best.items())
    siblings = sum(cls is Int4SiblingLinear for cls in layers.values())
    print(f"{model_entry.model_id}, {args.layers} layers, int4, {len(layers)} int4 layers ({siblings} of them q/k/v), "
          f"greedy decode after 32 tokens, best of {args.rounds} interleaved rounds: {rates}")

if __name__ == "__main__":
    main()
