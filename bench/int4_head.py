"""What the 8-bit output layer gives our CPU int4: decode speed and KL with lm_head in bf16 vs int8.

Run: .venv/bin/python -m bench.int4_head [--layers 6] [--tokens 32]
Loads bench/gguf.py's Llama at deepseek-coder-1.3b's width through the app's layer-by-layer int4 loader but with
lm_head left in bf16 (as the app served it before issue 18), times greedy `generate` (best of 3), then gives
lm_head the app's own treatment (kernels.quantize_head: int8, quanto, bf16 activations, ATen's
_weight_int8pack_mm) and times it again; prints the speed ratio and the KL divergence of the last positions'
next-token distributions (int8 head vs bf16 head). llama.cpp's Q4_0 stores its output layer in Q6_K.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from bench.gguf import build_checkpoint
from core.quant import streaming
from core.quant.kernels import quantize_head


def decode_rate(model: nn.Module, ids: torch.Tensor, tokens: int) -> float:
    """Greedy tokens/s of generate, best of 3 after a warm-up."""
    best = 0.0
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)
        for _ in range(3):
            start = time.perf_counter()
            model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
            best = max(best, tokens / (time.perf_counter() - start))
    return best


def last_logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(ids).logits[0, -8:].float().log_softmax(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(2)
    folder = build_checkpoint(args.layers)
    body = streaming.stream_quantizer("int4", "cpu", 128)
    model = streaming.load_streaming(folder, torch.bfloat16, lambda parent, child, linear: None if child == "lm_head"
                                     else body(parent, child, linear), [])
    assert model is not None and type(model.lm_head) is nn.Linear
    ids = torch.tensor([[1, *range(100, 130)]])
    before, reference = decode_rate(model, ids, args.tokens), last_logits(model, ids)
    assert quantize_head(model, "int4", "cpu")
    after, changed = decode_rate(model, ids, args.tokens), last_logits(model, ids)
    kl = torch.nn.functional.kl_div(changed, reference, log_target=True, reduction="batchmean")
    print(f"int4 body, lm_head bf16: {before:.2f} tok/s; lm_head int8: {after:.2f} tok/s -> {after / before:.2f}x; "
          f"KL(int8 head || bf16 head) over 8 positions {float(kl):.2e}; load average "
          f"{open('/proc/loadavg').read().split()[0]}")


if __name__ == "__main__":
    main()
