"""Freeze the embeddings and the lower share of decoder blocks, so only the top blocks and the head learn."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from core.errors import BadSettingError


@dataclass(frozen=True)
class FreezeReport:
    blocks: int  # decoder blocks in the model
    frozen_blocks: int  # the lowest ones
    trainable_params: int
    total_params: int

    def summary(self) -> str:
        share = self.trainable_params / self.total_params if self.total_params else 0.0
        return (f"{self.frozen_blocks}/{self.blocks} blocks frozen · {self.trainable_params:,} of "
                f"{self.total_params:,} parameters trainable ({share:.0%})")


def decoder_blocks(model: nn.Module) -> nn.ModuleList:
    """The transformer's decoder blocks (model.model.layers for DeepSeek, Qwen2 and Llama)."""
    body = getattr(model, "base_model", model)
    layers = getattr(body, "layers", None) or getattr(getattr(body, "model", None), "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise BadSettingError(f"Cannot find the decoder blocks of {type(model).__name__} to freeze.")
    return layers


def frozen_count(blocks: int, fraction: float) -> int:
    """How many of `blocks` a fraction freezes (rounded down: 0.8 of 4 blocks freezes 3)."""
    if not 0.0 <= fraction <= 1.0:
        raise BadSettingError(f"The frozen fraction must be between 0 and 1, got {fraction}.")
    return math.floor(blocks * fraction + 1e-9)


def freeze_lower(model: nn.Module, fraction: float) -> FreezeReport:
    """Freeze the input embeddings and the lowest `fraction` of blocks; everything else trains."""
    layers = decoder_blocks(model)
    count = frozen_count(len(layers), fraction)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    for parameter in model.get_input_embeddings().parameters():
        parameter.requires_grad_(False)
    for block in list(layers)[:count]:
        for parameter in block.parameters():
            parameter.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return FreezeReport(len(layers), count, trainable, total)
