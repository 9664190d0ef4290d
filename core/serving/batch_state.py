"""The running batch of a micro-batcher: a left-padded KV cache whose rows can join and leave between steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache


@dataclass
class BatchState:
    """Rows decoding together. All tensors share the batch order of `rows`."""

    rows: list[Any]  # one per batch row, opaque to this module
    cache: DynamicCache  # layers hold (batch, heads, seq, dim) keys/values, left-padded
    mask: torch.Tensor  # (batch, seq) 1 = real token, 0 = padding
    next_ids: torch.Tensor  # (batch,) the token each row feeds at the next step
    positions: torch.Tensor  # (batch,) the position of next_ids in each row's own sequence

    def keep(self, indices: list[int]) -> None:
        """Keep only these rows, then drop padding columns no remaining row needs."""
        index = torch.tensor(indices, dtype=torch.long, device=self.mask.device)
        self.rows = [self.rows[i] for i in indices]
        self.mask, self.next_ids, self.positions = self.mask[index], self.next_ids[index], self.positions[index]
        used = self.mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else self.mask.shape[1]
        for layer in self.cache.layers:
            layer.keys, layer.values = layer.keys[index, :, start:], layer.values[index, :, start:]
        self.mask = self.mask[:, start:]

    def extend(self, other: BatchState) -> None:
        """Append other's rows, left-padding whichever cache is shorter."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.keys = torch.cat([_left_pad(mine.keys, width), _left_pad(theirs.keys, width)])
            mine.values = torch.cat([_left_pad(mine.values, width), _left_pad(theirs.values, width)])
        self.mask = torch.cat([_left_pad_mask(self.mask, width), _left_pad_mask(other.mask, width)])
        self.rows = self.rows + other.rows
        self.next_ids = torch.cat([self.next_ids, other.next_ids])
        self.positions = torch.cat([self.positions, other.positions])

    def step(self, model: Any) -> torch.Tensor:
        """Feed next_ids to every row at once; (batch, vocab) logits of the following token."""
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        out = model(input_ids=self.next_ids[:, None], attention_mask=self.mask, position_ids=self.positions[:, None],
                    past_key_values=self.cache, use_cache=True)
        self.positions = self.positions + 1
        return out.logits[:, -1, :]


def prefill(model: Any, prompts: list[list[int]], rows: list[Any], pad_id: int, device: str) -> tuple[BatchState,
                                                                                                     torch.Tensor]:
    """Run the left-padded prompts in one forward pass; the new state (next_ids unset) and (batch, vocab) logits."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True,
                logits_to_keep=1)
    lengths = torch.tensor([len(p) for p in prompts], device=device)
    state = BatchState(list(rows), cache, mask, torch.zeros_like(lengths), lengths)
    return state, out.logits[:, -1, :]


def cache_is_plain(model: Any) -> bool:
    """True when the model's DynamicCache holds ordinary full-attention layers this module can reshape."""
    cache = DynamicCache(config=model.config)
    return all(type(layer).__name__ == "DynamicLayer" for layer in cache.layers)


def _left_pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    return F.pad(tensor, (0, 0, width - tensor.shape[-2], 0))  # (batch, heads, seq, dim): pad seq on the left


def _left_pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    return F.pad(mask, (width - mask.shape[1], 0))
