"""Quality measures of a language model on a fixed text."""

from __future__ import annotations

import math
from typing import Any

import torch


def perplexity(model: Any, ids: torch.Tensor, block_size: int = 512) -> float:
    """exp(mean next-token NLL) of ids (1-D token ids) in non-overlapping blocks of block_size."""
    total_nll, total_tokens = 0.0, 0
    device = next(model.parameters()).device
    with torch.inference_mode():
        for start in range(0, ids.numel() - 1, block_size):
            block = ids[start:start + block_size + 1].to(device)
            if block.numel() < 2:
                break
            logits = model(block[None, :-1]).logits.float()
            nll = torch.nn.functional.cross_entropy(logits[0], block[1:], reduction="sum")
            total_nll += float(nll)
            total_tokens += block.numel() - 1
    return math.exp(total_nll / max(total_tokens, 1))
