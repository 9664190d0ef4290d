"""Which weights a quantizer actually quantized, and what they weigh before and after."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.models.memory import tensor_bytes

QUANTIZED_STORAGE = (torch.int8, torch.uint8, torch.int32, torch.int16)  # packed / integer weight storage
GPTQ_TENSORS = ("qweight", "qzeros", "scales", "g_idx")


@dataclass(frozen=True)
class StoredPart:
    part: str  # e.g. "other linear layers", "lm_head"
    bits: int  # the width its quantized weights are stored at (4, 8; GGUF: 4, 6, 8 ...)
    params: int
    bytes: int  # real storage, scales and zero points included


@dataclass(frozen=True)
class WeightReport:
    quantized_params: int  # weights held in a quantized form (counted at their logical size)
    total_params: int  # all parameters of the model (logical size)
    quantized_bytes: int  # real storage of the quantized weights, scales and zero points included
    quantized_full_bytes: int  # what those same weights take at full precision
    full_precision_parts: tuple[str, ...]  # e.g. ("embeddings", "lm_head", "norms", "router")
    stored: tuple[StoredPart, ...] = ()  # the quantized weights by part and width, widest last

    @property
    def quantized_share(self) -> float:
        """Share of the model's weights that are quantized (0..1)."""
        return self.quantized_params / self.total_params if self.total_params else 0.0

    @property
    def quantized_ratio(self) -> float:
        """Quantized weights' bytes / the same weights' full-precision bytes (0 if none)."""
        return self.quantized_bytes / self.quantized_full_bytes if self.quantized_full_bytes else 0.0

    @property
    def widths(self) -> tuple[int, ...]:
        """The distinct widths the quantized weights are stored at, narrowest first."""
        return tuple(sorted({s.bits for s in self.stored}))

    def ratio_at(self, bits: int) -> float:
        """Bytes / full-precision bytes of the weights stored at `bits` only (the whole ratio if none are)."""
        parts = [s for s in self.stored if s.bits == bits]
        params = sum(s.params for s in parts)
        if not params:
            return self.quantized_ratio
        return sum(s.bytes for s in parts) / (params * self.quantized_full_bytes / max(1, self.quantized_params))

    def stored_as(self) -> tuple[str, ...]:
        """Each quantized part with its width, e.g. ("other linear layers int4", "lm_head int8")."""
        return tuple(f"{s.part} int{s.bits}" for s in self.stored)


def weight_report(model: nn.Module, full_element_size: int = 4) -> WeightReport:
    """Walk model's modules: count quantized weights (tensor subclasses, integer storage, GPTQ packs)."""
    total = 0
    parts: set[str] = set()
    stored: dict[tuple[str, int], tuple[int, int]] = {}  # (part, bits) -> (params, bytes)
    for name, module in model.named_modules():
        if _is_gptq(module):
            n = int(module.in_features) * int(module.out_features)
            nbytes = sum(tensor_bytes(getattr(module, t)) for t in GPTQ_TENSORS if hasattr(module, t))
            total += n
            bits = int(getattr(module, "bits", 0)) or _width(nbytes, n)
            add_stored(stored, part_name(f"{name}.weight"), bits, n, nbytes)
            continue
        for pname, tensor in module.named_parameters(recurse=False):
            total += tensor.numel()
            if _is_quantized_tensor(tensor):
                nbytes = tensor_bytes(tensor) + _companion_bytes(module)
                add_stored(stored, part_name(f"{name}.{pname}"), _width(nbytes, tensor.numel()), tensor.numel(), nbytes)
            else:
                parts.add(part_name(f"{name}.{pname}"))
    return report_of(stored, total, full_element_size, parts)


def report_of(stored: dict[tuple[str, int], tuple[int, int]], total: int, full_element_size: int,
              kept: set[str]) -> WeightReport:
    """A WeightReport from (part, bits) -> (params, bytes) of the quantized weights and the parts kept full."""
    q_params, q_bytes = sum(p for p, _ in stored.values()), sum(b for _, b in stored.values())
    parts = tuple(StoredPart(part, bits, p, b) for (part, bits), (p, b) in
                  sorted(stored.items(), key=lambda item: (item[0][1], -item[1][0])))
    return WeightReport(q_params, total, q_bytes, q_params * full_element_size, tuple(sorted(kept)), parts)


def add_stored(stored: dict[tuple[str, int], tuple[int, int]], part: str, bits: int, params: int,
               nbytes: int) -> None:
    """Count params weights of part stored at bits in nbytes into stored ((part, bits) -> (params, bytes))."""
    p, b = stored.get((part, bits), (0, 0))
    stored[(part, bits)] = (p + params, b + nbytes)


def _width(nbytes: int, params: int) -> int:
    """The nominal width of a torch quantized weight from its storage: 4-bit kernels keep 4.1-5 bits a weight
    (scales and zero points included), 8-bit ones 8-8.5."""
    return 4 if nbytes * 8 < 7 * params else 8


def part_name(name: str) -> str:
    """A parameter name -> the part of the model a person would call it."""
    if "embed" in name:
        return "embeddings"
    if "lm_head" in name:
        return "lm_head"
    if "norm" in name:
        return "norms"
    if ".gate." in name or name.endswith(".gate.weight") or "e_score_correction" in name:
        return "router"
    if "bias" in name:
        return "biases"
    return "other linear layers"


def _is_gptq(module: nn.Module) -> bool:
    qweight = getattr(module, "qweight", None)
    return isinstance(qweight, torch.Tensor) and hasattr(module, "in_features")


def _is_quantized_tensor(tensor: torch.Tensor) -> bool:
    if type(tensor) not in (torch.Tensor, nn.Parameter) and hasattr(tensor, "__tensor_flatten__"):
        return True
    return tensor.dtype in QUANTIZED_STORAGE or type(tensor).__name__ in ("Params4bit", "Int8Params")


def _companion_bytes(module: nn.Module) -> int:
    """Scales a layer keeps next to its quantized weight as separate buffers (bitsandbytes' SCB, Int8DynamicLinear's
    scale)."""
    return sum(tensor_bytes(b) for n, b in module.named_buffers(recurse=False) if "scb" in n.lower() or n == "scale")
