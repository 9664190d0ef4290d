"""Int8DynamicLinear: int8 weights (one scale per output row) times int8 activations quantized per token as they
arrive, multiplied by FBGEMM's dynamic int8 linear (core/quant/fbgemm_int8.py) where torch has it, else by ATen's
integer matmul (torch._int_mm), and rescaled.

What CPU int4 stores its untied lm_head in. At decode (one token a step) the output layer is a matrix-vector product
that only streams its weights: at 129,280 x 1,536 on 2 AVX512-VNNI cores FBGEMM took 5.4 ms a token, torch._int_mm
9.2 and quanto's weight-only int8 (_weight_int8pack_mm, bf16 activations) 12.9 (bench/int4_head.py).
"""

from __future__ import annotations

import torch
from torch import nn

from core.models.native_memory import trim
from core.quant import fbgemm_int8

INT8_MAX = 127.0
PIECE_BYTES = 16 * 2**20  # int8 rows packed for FBGEMM at a time: packing copies them once, and each piece's
# temporaries are trimmed back to the system before the next (129,280 x 1,536: 4.2-5.0 ms a token in 12, 6, 4 or 3
# pieces; 7.1 in one)


class Int8DynamicLinear(nn.Module):
    """y = x @ W.T + b with W stored as int8 rows and x quantized to int8 per token (symmetric) at each call."""

    def __init__(self, weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None,
                 packed: list[torch.ScriptObject] | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        # (out, in) int8; on the meta device (shape and dtype only, so memory counts stay right) when FBGEMM's
        # packed pieces hold the rows
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.register_buffer("scale", scale)  # (out,) float32: row i is weight[i] * scale[i]
        self.bias = None if bias is None else nn.Parameter(bias.detach(), requires_grad=False)
        self.packed = packed

    @classmethod
    def from_linear(cls, linear: nn.Linear, chunk_bytes: int, piece_bytes: int = PIECE_BYTES) -> Int8DynamicLinear:
        """linear quantized per output row, chunk_bytes of its float rows at a time (bounds the temporaries); on a
        CPU with FBGEMM the rows are packed for it piece_bytes of int8 at a time and not kept as a plain tensor."""
        weight = linear.weight.detach()
        rows, width = weight.shape
        scale = torch.empty(rows, dtype=torch.float32, device=weight.device)
        if not (weight.device.type == "cpu" and fbgemm_int8.available()):
            data = torch.empty(weight.shape, dtype=torch.int8, device=weight.device)
            _quantize_rows(weight, data, scale, chunk_bytes)
            return cls(data, scale, linear.bias)
        step, packed = max(1, piece_bytes // width), []
        for start in range(0, rows, step):
            piece = torch.empty((min(step, rows - start), width), dtype=torch.int8)
            _quantize_rows(weight[start:start + step], piece, scale[start:start + step], chunk_bytes)
            packed.append(fbgemm_int8.pack(piece, scale[start:start + step]))
            del piece
            trim()  # else glibc keeps the freed piece and its copy as holes in the heap (a 6-layer load: 1.60x peak)
        return cls(torch.empty(weight.shape, dtype=torch.int8, device="meta"), scale, linear.bias, packed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).float()
        if self.packed is not None:
            out = fbgemm_int8.multiply(flat, self.packed)
        else:
            x_scale = flat.abs().amax(dim=1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny) / INT8_MAX
            quantized = (flat / x_scale).round().clamp(-INT8_MAX, INT8_MAX).to(torch.int8)
            out = torch._int_mm(quantized, self.weight.t()).float() * x_scale * self.scale
        if self.bias is not None:
            out = out + self.bias.float()
        return out.to(x.dtype).reshape(*x.shape[:-1], self.out_features)

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.packed is not None:  # the rows, not the meta stand-in
            destination[prefix + "weight"] = fbgemm_int8.unpack(self.packed)

    def extra_repr(self) -> str:
        multiply = "FBGEMM" if self.packed is not None else "torch._int_mm"
        return (f"in_features={self.in_features}, out_features={self.out_features}, int8 weights x int8 activations "
                f"({multiply})")


def packed_elsewhere(module: nn.Module) -> bool:
    """Whether module's weight is a meta-device stand-in because a kernel's packed copy holds its rows."""
    return isinstance(module, Int8DynamicLinear) and module.packed is not None


def _quantize_rows(weight: torch.Tensor, data: torch.Tensor, scale: torch.Tensor, chunk_bytes: int) -> None:
    """Fill data (int8) and scale (float32, one per row) with weight's rows quantized symmetrically per row."""
    step = max(1, chunk_bytes // (weight.shape[1] * 4))
    for start in range(0, weight.shape[0], step):
        rows = weight[start:start + step].float()
        row_scale = rows.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny) / INT8_MAX
        data[start:start + step] = (rows / row_scale[:, None]).round().clamp(-INT8_MAX, INT8_MAX).to(torch.int8)
        scale[start:start + step] = row_scale
