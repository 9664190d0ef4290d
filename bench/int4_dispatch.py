"""CPU int4 decode with torchao's linear (tensor-subclass dispatch) vs Int4PackedLinear (ATen's kernel called directly).

Run: flock /tmp/bigmem.lock .venv/bin/python -m bench.int4_dispatch [--layers 28] [--rounds 3]
Loads bench/realsize_models.py's Qwen2 at R1-Distill-1.5B's width through the app's int4 loader, then times greedy
decode steps after a 32-token prompt with every int4 layer as Int4PackedLinear and as a plain nn.Linear (torchao's
dispatch), in interleaved rounds in one process; prints the best round of each and the ratio.
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
    layers = [m for m in model.modules() if type(m) is Int4PackedLinear]
    best = {"torchao dispatch": 0.0, "Int4PackedLinear": 0.0}
    for _ in range(args.rounds):
        for name, cls in (("torchao dispatch", nn.Linear), ("Int4PackedLinear", Int4PackedLinear)):
            for layer in layers:
                layer.__class__ = cls
            best[name] = max(best[name], on_fresh_thread(lambda: decode_rate(model, 32, 12)))
    print(f"{model_entry.model_id}, {args.layers} layers, int4, {len(layers)} int4 layers, greedy decode after 32 "
          f"tokens, best of {args.rounds} interleaved rounds: torchao dispatch {best['torchao dispatch']:.2f} tok/s, "
          f"Int4PackedLinear {best['Int4PackedLinear']:.2f} tok/s "
          f"({best['Int4PackedLinear'] / best['torchao dispatch']:.3f}x)")


if __name__ == "__main__":
    main()
