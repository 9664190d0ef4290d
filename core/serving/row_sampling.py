"""Per-request token choice inside a shared batch: each row keeps its own settings, history and RNG."""

from __future__ import annotations

import torch
from transformers import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from core.generation.sampling import SamplingParams


class RowSampler:
    """Chooses one row's next token the way model.generate would for this request alone."""

    def __init__(self, params: SamplingParams, prompt: list[int], device: str) -> None:
        self.params = params
        self.ids = torch.tensor([prompt], device=device)  # (1, seq) prompt + chosen tokens, for the penalty
        self.last_token: int | None = None
        self.processors = LogitsProcessorList()
        if params.repetition_penalty != 1.0:
            self.processors.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
        self.generator: torch.Generator | None = None
        if params.temperature > 0:
            self.processors.append(TemperatureLogitsWarper(params.temperature))
            if params.top_k > 0:
                self.processors.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                self.processors.append(TopPLogitsWarper(params.top_p))
            self.generator = torch.Generator(device=device)
            if params.seed is None:
                self.generator.seed()
            else:
                self.generator.manual_seed(params.seed)

    @property
    def plain_greedy(self) -> bool:
        """True when the choice is a bare argmax, which the batcher does for all such rows at once."""
        return self.generator is None and not self.processors

    def record(self, token: int) -> None:
        """Note a token chosen for this row outside next_token (batched argmax)."""
        self.last_token = token

    def next_token(self, logits: torch.Tensor) -> torch.Tensor:
        """(vocab,) logits -> () token id; greedy at temperature 0, else sampled from this row's generator."""
        scores = self.processors(self.ids, logits[None].float())  # (1, vocab)
        if self.generator is None:
            token = scores.argmax(dim=-1)
        else:
            token = torch.multinomial(scores.softmax(dim=-1), 1, generator=self.generator)[:, 0]
        self.ids = torch.cat([self.ids, token[:, None]], dim=1)
        self.last_token = int(token)
        return token[0]
