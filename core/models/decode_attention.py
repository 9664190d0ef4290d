"""Attention for one new token on the CPU as two small matmuls, in place of PyTorch's CPU flash-attention kernel.

At decode every row feeds one token, and the CPU's scaled_dot_product_attention kernel spends most of its time
setting up blocks. For 12 query heads over 2 key/value heads (R1-Distill-1.5B's shape, bf16, 2 threads) one call
took 63 us at 32 tokens of context, 1.4 ms at 1,000 and 5.3 ms at 4,000, where q @ k.T, softmax, @ v took 84, 139
and 267 us; greedy decode of a 6-layer int4 model at that width ran 1.02x, 1.26x and 2.20x as fast
(bench/decode_attention.py). Installed once as transformers' "sdpa" attention: prefill, CUDA, dropout, position
biases and paged caches still go to transformers' own sdpa_attention_forward.
Up to SHORT_CONTEXT tokens the matmuls run in float32: there bf16's small matmuls cost more to start than to compute
(q @ k.T, softmax, @ v at 40 tokens: 73 us in bf16, 37 in float32; equal at 300; float32 slower at 2,000).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

SHORT_CONTEXT = 256  # tokens of context up to which the matmuls run in float32


def attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
              is_causal: bool | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' attention signature: (batch, heads, q, dim) in, (batch, q, heads, dim_v) out."""
    if (query.shape[2] != 1 or query.device.type != "cpu" or dropout or kwargs.get("position_bias") is not None
            or kwargs.get("cache") is not None or kwargs.get("softcap") is not None):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    batch, heads, _, dim = query.shape
    kv_heads, length = key.shape[1], key.shape[2]
    compute = torch.float32 if length <= SHORT_CONTEXT else query.dtype
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, dim).to(compute)  # heads sharing a key/value head
    scores = torch.matmul(grouped, key.transpose(-1, -2).to(compute)).float()
    scores = scores * (dim ** -0.5 if scaling is None else scaling)
    if attention_mask is not None:
        mask = attention_mask[..., -1:, :length]  # (batch, 1 or heads, 1, length)
        mask = mask.reshape(batch, 1, 1, length) if mask.shape[1] == 1 else mask.reshape(batch, kv_heads, -1, length)
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
    weights = scores.softmax(dim=-1).to(compute)
    out = torch.matmul(weights, value.to(compute)).to(value.dtype)  # (batch, kv_heads, groups, dim_v)
    return out.reshape(batch, heads, 1, value.shape[-1]).transpose(1, 2).contiguous(), None


def install() -> None:
    """Make this transformers' "sdpa" attention (idempotent)."""
    AttentionInterface.register("sdpa", attention)
