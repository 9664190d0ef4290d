"""Int8DynamicLinear: int8 weights (one scale per output row) times int8 activations quantized per token as they
arrive, multiplied by ATen's integer matmul (torch._int_mm) and rescaled.

What CPU int4 stores its untied lm_head in. At decode (one token a step) the output layer is a matrix-vector product
that only streams its weights: torch._int_mm read a 32,256 x 2,048 int8 head at ~28 GB/s on 2 AVX512 cores where
quanto's weight-only int8 (_weight_int8pack_mm, bf16 activations) read it at ~17 GB/s (bench/int4_head.py).
"""

from __future__ import annotations

import torch
from torch import nn

INT8_MAX = 127.0


class Int8DynamicLinear(nn.Module):
    """y = x @ W.T + b with W stored as int8 rows and x quantized to int8 per token (symmetric) at each call."""

    def __init__(self, weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.weight = nn.Parameter(weight, requires_grad=False)  # (out, in) int8
        self.register_buffer("scale", scale)  # (out,) float32: row i is weight[i] * scale[i]
        self.bias = None if bias is None else nn.Parameter(bias.detach(), requires_grad=False)

    @classmethod
    def from_linear(cls, linear: nn.Linear, chunk_bytes: int) -> Int8DynamicLinear:
        """linear quantized per output row, chunk_bytes of its rows at a time (bounds the float temporaries)."""
        weight = linear.weight.detach()
        data = torch.empty(weight.shape, dtype=torch.int8, device=weight.device)
        scale = torch.empty(weight.shape[0], dtype=torch.float32, device=weight.device)
        step = max(1, chunk_bytes // (weight.shape[1] * 4))
        for start in range(0, weight.shape[0], step):
            rows = weight[start:start + step].float()
            row_scale = rows.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny) / INT8_MAX
            data[start:start + step] = (rows / row_scale[:, None]).round().clamp(-INT8_MAX, INT8_MAX).to(torch.int8)
            scale[start:start + step] = row_scale
        return cls(data, scale, linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).float()
        x_scale = flat.abs().amax(dim=1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny) / INT8_MAX
        quantized = (flat / x_scale).round().clamp(-INT8_MAX, INT8_MAX).to(torch.int8)
        out = torch._int_mm(quantized, self.weight.t()).float() * x_scale * self.scale
        if self.bias is not None:
            out = out + self.bias.float()
        return out.to(x.dtype).reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights x int8 activations"
