"""Which weights a quantizer actually quantized, and what they weigh before and after."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.models.memory import tensor_bytes

QUANTIZED_STORAGE = (torch.int8, torch.uint8, torch.int32, torch.int16)  # packed / integer weight storage
GPTQ_TENSORS = ("qweight", "qzeros", "scales", "g_idx")


@dataclass(frozen=True)
class WeightReport:
    quantized_params: int  # weights held in a quantized form (counted at their logical size)
    total_params: int  # all parameters of the model (logical size)
    quantized_bytes: int  # real storage of the quantized weights, scales and zero points included
    quantized_full_bytes: int  # what those same weights take at full precision
    full_precision_parts: tuple[str, ...]  # e.g. ("embeddings", "lm_head", "norms", "router")

    @property
    def quantized_share(self) -> float:
        """Share of the model's weights that are quantized (0..1)."""
        return self.quantized_params / self.total_params if self.total_params else 0.0

    @property
    def quantized_ratio(self) -> float:
        """Quantized weights' bytes / the same weights' full-precision bytes (0 if none)."""
        return self.quantized_bytes / self.quantized_full_bytes if self.quantized_full_bytes else 0.0


def weight_report(model: nn.Module, full_element_size: int = 4) -> WeightReport:
    """Walk model's modules: count quantized weights (tensor subclasses, integer storage, GPTQ packs)."""
    q_params = total = q_bytes = 0
    parts: set[str] = set()
    for name, module in model.named_modules():
        if _is_gptq(module):
            n = int(module.in_features) * int(module.out_features)
            q_params, total = q_params + n, total + n
            q_bytes += sum(tensor_bytes(getattr(module, t)) for t in GPTQ_TENSORS if hasattr(module, t))
            continue
        for pname, tensor in module.named_parameters(recurse=False):
            total += tensor.numel()
            if _is_quantized_tensor(tensor):
                q_params += tensor.numel()
                q_bytes += tensor_bytes(tensor) + _companion_bytes(module)
            else:
                parts.add(part_name(f"{name}.{pname}"))
    return WeightReport(q_params, total, q_bytes, q_params * full_element_size, tuple(sorted(parts)))


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
    """Scales a layer keeps next to its quantized weight as separate buffers (bitsandbytes int8)."""
    return sum(tensor_bytes(b) for n, b in module.named_buffers(recurse=False) if "scb" in n.lower())
