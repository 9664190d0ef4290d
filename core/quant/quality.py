"""Quality measures of a language model on a fixed text."""

from __future__ import annotations

import math
from dataclasses import dataclass
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


@dataclass(frozen=True)
class LogitAgreement:
    reference_perplexity: float
    perplexity: float
    kl_mean: float  # mean KL(reference || candidate) of next-token distributions, nats
    top1_agreement: float  # share of positions where both predict the same next token
    tokens: int

    @property
    def perplexity_change(self) -> float:
        """Relative change vs the reference, e.g. 0.02 = +2 %."""
        return self.perplexity / self.reference_perplexity - 1.0


def compare_logits(reference: Any, candidate: Any, ids: torch.Tensor, block_size: int = 256) -> LogitAgreement:
    """Perplexity of both, mean KL and top-1 agreement of candidate vs reference on ids (1-D token ids)."""
    nll_ref = nll_cand = kl = 0.0
    agree = tokens = 0
    with torch.inference_mode():
        for start in range(0, ids.numel() - 1, block_size):
            block = ids[start:start + block_size + 1]
            if block.numel() < 2:
                break
            ref = _log_probs(reference, block[:-1])  # (seq, vocab)
            cand = _log_probs(candidate, block[:-1])
            target = block[1:]
            nll_ref -= float(ref.gather(1, target[:, None]).sum())
            nll_cand -= float(cand.gather(1, target[:, None]).sum())
            kl += float((ref.exp() * (ref - cand)).sum())
            agree += int((ref.argmax(-1) == cand.argmax(-1)).sum())
            tokens += target.numel()
    n = max(tokens, 1)
    return LogitAgreement(math.exp(nll_ref / n), math.exp(nll_cand / n), max(kl / n, 0.0), agree / n, tokens)


def greedy_agreement(candidate: Any, prompt_ids: list[int], answer_ids: list[int]) -> float:
    """Share of a reference answer's tokens that candidate also picks greedily after the same prefix."""
    if not answer_ids:
        return 1.0
    ids = torch.tensor(prompt_ids + answer_ids)
    with torch.inference_mode():
        picks = _log_probs(candidate, ids[:-1])[len(prompt_ids) - 1:].argmax(-1)
    return float((picks == ids[len(prompt_ids):]).float().mean())


def _log_probs(model: Any, ids: torch.Tensor) -> torch.Tensor:
    device = next(model.parameters()).device
    return model(ids[None].to(device)).logits[0].float().log_softmax(-1).cpu()
