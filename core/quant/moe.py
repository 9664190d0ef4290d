"""Un-fusing MoE experts: 3-D expert tensors -> one nn.Linear per expert, so quantizers see them."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class LinearExpert(nn.Module):
    """One routed expert as plain linear layers (the original DeepSeek checkpoint layout)."""

    def __init__(self, hidden: int, intermediate: int, act_fn: Any) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)
        self.act_fn = act_fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class LinearExperts(nn.ModuleList):
    """Drop-in for transformers' fused experts: same forward(hidden, top_k_index, top_k_weights)."""

    def forward(self, hidden_states: torch.Tensor, top_k_index: torch.Tensor,
                top_k_weights: torch.Tensor) -> torch.Tensor:
        # hidden_states: (tokens, hidden); top_k_index / top_k_weights: (tokens, k)
        out = torch.zeros_like(hidden_states)
        for expert_idx in torch.unique(top_k_index).tolist():
            if not 0 <= expert_idx < len(self):
                continue
            token_idx, k_pos = torch.where(top_k_index == expert_idx)
            y = self[expert_idx](hidden_states[token_idx]) * top_k_weights[token_idx, k_pos, None]
            out.index_add_(0, token_idx, y.to(out.dtype))
        return out


def is_fused_experts(module: nn.Module) -> bool:
    """True for transformers' fused experts: gate_up_proj (E, 2I, H) and down_proj (E, H, I) parameters."""
    gate_up, down = getattr(module, "gate_up_proj", None), getattr(module, "down_proj", None)
    if not isinstance(gate_up, torch.Tensor) or not isinstance(down, torch.Tensor):
        return False
    if gate_up.dim() != 3 or down.dim() != 3:
        return False
    experts, two_i, hidden = gate_up.shape
    return down.shape == (experts, hidden, two_i // 2) and not getattr(module, "has_bias", False)


def unfuse_module(fused: nn.Module) -> LinearExperts:
    """Copy the fused expert tensors into per-expert linear layers (same dtype and device)."""
    experts, two_i, hidden = fused.gate_up_proj.shape
    inter = two_i // 2
    linear = LinearExperts(LinearExpert(hidden, inter, fused.act_fn) for _ in range(experts))
    linear.to(device=fused.gate_up_proj.device, dtype=fused.gate_up_proj.dtype)
    with torch.no_grad():
        for e, expert in enumerate(linear):
            expert.gate_proj.weight.copy_(fused.gate_up_proj[e, :inter])
            expert.up_proj.weight.copy_(fused.gate_up_proj[e, inter:])
            expert.down_proj.weight.copy_(fused.down_proj[e])
    return linear


def unfuse_experts(model: nn.Module) -> int:
    """Replace every fused experts module in model in place; returns how many were replaced."""
    targets = [(name, module) for name, module in model.named_modules() if is_fused_experts(module)]
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, unfuse_module(module))
    return len(targets)
