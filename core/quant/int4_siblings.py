"""One int4 kernel call for sibling projections that read the same input (an attention's q, k and v).

At decode ATen's CPU int4 kernel costs about as much to start as to stream a small matrix: at R1-Distill-1.5B's width
q, k and v (1,536, 256 and 256 rows) took 177 us as three calls and 94 us as one (bench/int4_siblings.py). Their
packed weights are rows in blocks of 64, so siblings whose widths are multiples of 64 concatenate into one packed
matrix that gives exactly the three outputs side by side. Each projection keeps its module, a view of its packed rows
and its own scales (a column slice of the joined scales would not be contiguous, and the kernel reads such a slice
wrongly without a word); the joined scales, about 100 KB a layer there, are a buffer of the parent module, so memory
counts include them. The first call for an input multiplies all siblings and the others take their columns from it.
"""

from __future__ import annotations

import threading

import torch
from torch import nn

from core.quant.int4_linear import Int4PackedLinear, int4_matmul

PACK_BLOCK_ROWS = 64  # the CPU packing interleaves rows in blocks of this many (ATen's BLOCK_N)
ATTENTION_SIBLINGS = ("q_proj", "k_proj", "v_proj")


class SiblingProduct:
    """The packed weights of sibling projections side by side, and the last product for each thread."""

    def __init__(self, members: list[Int4PackedLinear]) -> None:
        self.qdata = torch.cat([m.weight.qdata for m in members])
        self.scale_and_zero = torch.cat([m.weight.scale_and_zero for m in members], dim=1)
        self.group = members[0].weight.block_size[1]
        biases = [m.bias for m in members]
        self.bias = None if all(b is None for b in biases) else torch.cat(
            [b.detach() if b is not None else torch.zeros(m.out_features, dtype=m.weight.dtype)
             for b, m in zip(biases, members, strict=True)])
        self.count = len(members)
        self.last = threading.local()

    def output(self, x: torch.Tensor) -> torch.Tensor:
        """All siblings' outputs for x, side by side: computed on the first of their calls for x, then reused."""
        last = self.last
        if getattr(last, "x", None) is x:
            last.left -= 1
            y = last.y
            if not last.left:  # every sibling has its columns: drop the references (a long prefill's are large)
                last.x = last.y = None
            return y
        y = int4_matmul(x, self.qdata, self.group, self.scale_and_zero, self.qdata.shape[0], self.bias)
        last.x, last.y, last.left = x, y, self.count - 1
        return y


class Int4SiblingLinear(Int4PackedLinear):
    """An Int4PackedLinear whose rows live in a SiblingProduct: its output is its columns of the shared product."""

    product: SiblingProduct
    start: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.product.output(x)[..., self.start:self.start + self.out_features]


def share_sibling_products(model: nn.Module, names: tuple[str, ...] = ATTENTION_SIBLINGS) -> int:
    """Give every module whose children `names` are all Int4PackedLinear over the same input width, with the same
    group and widths in whole packing blocks, one shared product; how many groups it joined."""
    joined = 0
    for parent in model.modules():
        members = [getattr(parent, name, None) for name in names]
        if not _joinable(members):
            continue
        product = SiblingProduct(members)
        parent.register_buffer("sibling_scale_and_zero", product.scale_and_zero, persistent=False)
        start = 0
        for member in members:
            rows = member.out_features
            weight = member.weight
            weight.qdata = product.qdata[start:start + rows]  # a view: the separate copies are freed
            member.__class__ = Int4SiblingLinear
            member.product, member.start = product, start
            start += rows
        joined += 1
    return joined


def _joinable(members: list[object]) -> bool:
    if not all(type(m) is Int4PackedLinear for m in members):
        return False
    first = members[0].weight
    return all(m.in_features == members[0].in_features and m.weight.block_size == first.block_size
               and m.weight.dtype == first.dtype and m.out_features % PACK_BLOCK_ROWS == 0
               and m.weight.qdata.shape[0] == m.out_features for m in members)
