"""int8 rows packed for FBGEMM's dynamic int8 linear, and activations fed to it so that each token is quantized on its
own scale, whatever tokens share the call.

FBGEMM (x86 builds of torch) multiplies uint8 activations by int8 weights with AVX512-VNNI where the CPU has it. At
129,280 x 1,536 (R1-Distill's output layer, 2 threads) it took 5.4 ms a token where torch._int_mm took 9.2: _int_mm is
compute-bound there (18 ms on one thread), FBGEMM nearly bandwidth-bound (7.7 ms on one).
FBGEMM quantizes a call's activations with one scale and zero point for the whole call. Each row is divided by its
own largest magnitude and a sentinel row holding +1 and -1 is added, so every call spans exactly [-1, 1]: a token's
quantization never depends on the others in its batch (batched and alone give the same logits).
The weight is packed in pieces (Int8DynamicLinear.from_linear, PIECE_BYTES each) so that packing never holds a
second copy of all of it.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import torch


@functools.cache
def available() -> bool:
    """Whether this torch build has FBGEMM's quantized linear (x86 builds do)."""
    engines = torch.backends.quantized
    return "fbgemm" in engines.supported_engines and engines.engine in ("x86", "fbgemm")


@functools.cache
def _reduce_range() -> bool:
    """Without VNNI, FBGEMM's 8-bit path can saturate 16-bit sums; it then needs activations in 7 bits."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return "avx512_vnni" not in flags and "avx_vnni" not in flags


def pack(rows: torch.Tensor, scale: torch.Tensor) -> torch.ScriptObject:
    """int8 rows (out, in) with one float scale per row -> FBGEMM's packed weight (a copy; rows can be freed)."""
    with warnings.catch_warnings():  # quantized tensors are deprecated as a user API; the packed op stays
        warnings.simplefilter("ignore", UserWarning)
        quantized = torch._make_per_channel_quantized_tensor(rows, scale.double(),
                                                             torch.zeros(len(scale), dtype=torch.long), 0)
        return torch.ops.quantized.linear_prepack(quantized, None)


def unpack(pieces: list[torch.ScriptObject]) -> torch.Tensor:
    """The int8 rows the packed pieces hold, as one (out, in) tensor (a copy)."""
    return torch.cat([torch.ops.quantized.linear_unpack(piece)[0].int_repr() for piece in pieces])


def multiply(x: torch.Tensor, pieces: list[torch.ScriptObject]) -> torch.Tensor:
    """x (tokens, in) float32 times the packed pieces' rows, side by side: (tokens, out) float32."""
    norm = x.abs().amax(dim=1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny)
    sentinel = torch.zeros(1, x.shape[1], dtype=torch.float32)  # explicit: a load elsewhere may change the default
    sentinel[0, 0], sentinel[0, -1] = 1.0, -1.0
    rows = torch.cat([x / norm, sentinel])
    out = [torch.ops.quantized.linear_dynamic(rows, piece, _reduce_range()) for piece in pieces]
    return (out[0] if len(out) == 1 else torch.cat(out, dim=1))[:-1] * norm
