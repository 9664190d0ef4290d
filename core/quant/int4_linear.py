"""Int4PackedLinear: an nn.Linear whose torchao Int4OpaqueTensor weight it multiplies by ATen's int4 kernel itself.

torchao's linear for that weight runs through the tensor subclass's dispatch on every call. At decode a model makes
hundreds of such calls a token (196 at R1-Distill-1.5B's 28 layers), and skipping the dispatch decoded 4 % faster
there (15.30 -> 15.94 tok/s, bench/int4_dispatch.py). Same op, same tensors, same reshapes: the outputs are equal.
"""

from __future__ import annotations

import torch
from torch import nn


class Int4PackedLinear(nn.Linear):
    """nn.Linear with an A16W4 Int4OpaqueTensor weight: y = _weight_int4pack_mm_for_cpu(x, packed, group, scales)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        return int4_matmul(x, weight.qdata, weight.block_size[1], weight.scale_and_zero, self.out_features, self.bias)


def int4_matmul(x: torch.Tensor, qdata: torch.Tensor, group: int, scale_and_zero: torch.Tensor, out_features: int,
                bias: torch.Tensor | None) -> torch.Tensor:
    """x (..., in) times packed int4 rows (the first out_features of them) plus bias, in x's dtype."""
    shape = x.shape
    y = torch.ops.aten._weight_int4pack_mm_for_cpu(x.reshape(-1, shape[-1]).contiguous(), qdata, group,
                                                   scale_and_zero)
    y = y[:, :out_features].reshape(*shape[:-1], out_features)
    if bias is not None:
        y += bias
    return y.to(x.dtype)


def call_int4_directly(model: nn.Module) -> int:
    """Give every nn.Linear that holds a plain (weight-only, groupwise) Int4OpaqueTensor Int4PackedLinear's
    forward; how many it changed."""
    changed = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if (type(module) is nn.Linear and type(weight).__name__ == "Int4OpaqueTensor"
                and weight.act_pre_scale is None and weight.act_mapping_type is None and weight.block_size[0] == 1):
            module.__class__ = Int4PackedLinear
            changed += 1
    return changed
