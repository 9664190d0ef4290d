"""What the 8-bit output layer gives our CPU int4: decode speed and KL with lm_head in bf16, quanto int8 and
the app's int8 (int8 weights x int8 activations per token, multiplied by torch._int_mm or by FBGEMM).

Run: .venv/bin/python -m bench.int4_head [--layers 6] [--tokens 32]
Loads bench/gguf.py's Llama at deepseek-coder-1.3b's width through the app's layer-by-layer int4 loader but with
lm_head left in bf16 (as the app served it before issue 18), then gives lm_head each treatment in turn: quanto's
weight-only int8 (bf16 activations, ATen's _weight_int8pack_mm: what the app used before) and the app's own
(kernels.quantize_head: Int8DynamicLinear, multiplied by torch._int_mm and by FBGEMM). Each is timed with greedy
`generate` (best of 3, one run, every head from the same bf16 weights) and its next-token distributions at the last 8
positions compared with the bf16 head's (KL). llama.cpp's Q4_0 stores its output layer in Q6_K.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn

from bench.gguf import build_checkpoint
from core.quant import fbgemm_int8, kernels, streaming


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
    bf16_head = model.lm_head
    before, reference = decode_rate(model, ids, args.tokens), last_logits(model, ids)
    print(f"int4 body at {args.layers} layers, greedy generate, load average {open('/proc/loadavg').read().split()[0]}")
    print(f"  lm_head bf16                          : {before:6.2f} tok/s")
    model.lm_head = kernels._quanto_int8(copy.deepcopy(bf16_head))  # the app's head before this bench's last change
    quanto = decode_rate(model, ids, args.tokens)
    print(f"  lm_head quanto int8 (_weight_int8pack_mm): {quanto:6.2f} tok/s ({quanto / before:.2f}x bf16); "
          f"KL vs bf16 {kl(last_logits(model, ids), reference):.2e}")
    rates = {}
    for name, fbgemm in (("torch._int_mm", False), ("FBGEMM", True)):
        if fbgemm and not fbgemm_int8.available():
            continue
        model.lm_head = bf16_head
        available = fbgemm_int8.available
        fbgemm_int8.available = lambda fbgemm=fbgemm: fbgemm  # the app picks FBGEMM where torch has it
        try:
            assert kernels.quantize_head(model, "int4", "cpu")
        finally:
            fbgemm_int8.available = available
        rates[name] = decode_rate(model, ids, args.tokens)
        print(f"  lm_head the app's int8 ({name:13}): {rates[name]:6.2f} tok/s ({rates[name] / before:.2f}x bf16, "
              f"{rates[name] / quanto:.2f}x quanto); KL vs bf16 {kl(last_logits(model, ids), reference):.2e}")
    if len(rates) == 2:
        print(f"  FBGEMM / torch._int_mm: {rates['FBGEMM'] / rates['torch._int_mm']:.3f}x")


def kl(changed: torch.Tensor, reference: torch.Tensor) -> float:
    return float(torch.nn.functional.kl_div(changed, reference, log_target=True, reduction="batchmean"))

if __name__ == "__main__":
    main()
