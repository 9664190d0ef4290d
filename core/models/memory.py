"""Real memory held by a model: summed tensor storage, quantized subclasses included."""

from __future__ import annotations

import itertools

import torch


def tensor_bytes(tensor: torch.Tensor) -> int:
    """Bytes of one tensor; wrapper subclasses (quanto, torchao) are summed over their inner tensors."""
    if hasattr(tensor, "__tensor_flatten__") and type(tensor) not in (torch.Tensor, torch.nn.Parameter):
        inner_names, _ctx = tensor.__tensor_flatten__()
        return sum(tensor_bytes(getattr(tensor, name)) for name in inner_names)
    return tensor.numel() * tensor.element_size()


def model_bytes(model: torch.nn.Module) -> int:
    """Bytes of all parameters and buffers, each shared tensor counted once."""
    seen: set[int] = set()
    total = 0
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        total += tensor_bytes(tensor)
    return total


def format_bytes(n: int | float) -> str:
    """1536 -> '1.5 KB' (powers of 1024)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
