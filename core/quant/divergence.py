"""Quality statistics of a quantized model against its reference, as llama.cpp's `llama-perplexity
--kl-divergence` reports them: each scored token has at least half a window of context."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

NOISE_SIGMAS = 2.0  # a difference smaller than this many standard errors is called noise


@dataclass(frozen=True)
class Estimate:
    value: float
    error: float  # one standard error

    def __str__(self) -> str:
        return f"{self.value:.6g} ± {self.error:.2g}"

    def within_noise_of(self, other: float | Estimate) -> bool:
        """True when the difference to other is under NOISE_SIGMAS combined standard errors."""
        value, error = (other.value, other.error) if isinstance(other, Estimate) else (float(other), 0.0)
        return abs(self.value - value) <= NOISE_SIGMAS * math.hypot(self.error, error)


@dataclass(frozen=True)
class Divergence:
    tokens: int  # tokens scored
    window: int  # tokens per forward pass; the first half of each is context only
    reference_perplexity: float
    perplexity: float
    perplexity_ratio: Estimate  # PPL(candidate) / PPL(reference)
    kl_mean: Estimate  # KL(reference || candidate) per token, nats
    kl_quantiles: dict[str, float]  # "median", "p90", "p99", "p99.9", "max"
    same_top: Estimate  # share of tokens where both models' most likely next token is the same
    delta_p_mean: Estimate  # p_candidate(true token) - p_reference(true token)
    delta_p_rms: Estimate

    @property
    def perplexity_within_noise(self) -> bool:
        """True when the perplexity ratio cannot be told apart from 1 on this many tokens."""
        return self.perplexity_ratio.within_noise_of(1.0)


def windows(n_tokens: int, window: int, max_scored: int) -> Iterator[tuple[int, int, int]]:
    """(start, first scored, end) of each forward pass over ids[start:end]: stride window/2, so every token
    from the first half-window on is scored once, with at least window/2 tokens before it, up to max_scored."""
    half = window // 2
    scored, start = 0, 0
    while start + half < n_tokens and scored < max_scored:
        end = min(start + window, n_tokens, start + half + max_scored - scored)
        yield start, start + half, end
        scored += end - (start + half)
        start += half


def reference_log_probs(model: Any, ids: torch.Tensor, window: int = 512,
                        max_scored: int = 2048) -> list[torch.Tensor]:
    """Log-probabilities (scored tokens, vocab) of the reference model, one tensor per window (kept in RAM)."""
    if ids.numel() < window // 2 + 2:
        raise ValueError(f"The quality text has {ids.numel()} tokens; scoring with a {window}-token window "
                         f"needs at least {window // 2 + 2}.")
    return [_window_log_probs(model, ids, *bounds) for bounds in windows(ids.numel(), window, max_scored)]


def divergence(reference: list[torch.Tensor], candidate: Any, ids: torch.Tensor, window: int = 512) -> Divergence:
    """Score candidate against reference_log_probs(…, ids, window, …) on the same ids (1-D) and windows."""
    parts: list[torch.Tensor] = []
    max_scored = sum(int(r.shape[0]) for r in reference)
    for ref, (start, first, end) in zip(reference, windows(ids.numel(), window, max_scored), strict=True):
        cand = _window_log_probs(candidate, ids, start, first, end)
        parts.append(_token_stats(ref, cand, ids[first:end]))
    return summarize(torch.cat(parts), window)


def compare_models(reference: Any, candidate: Any, ids: torch.Tensor, window: int = 512,
                   max_scored: int = 2048) -> Divergence:
    """reference_log_probs + divergence in one call (the reference is recomputed each time)."""
    return divergence(reference_log_probs(reference, ids, window, max_scored), candidate, ids, window)


def summarize(stats: torch.Tensor, window: int) -> Divergence:
    """Per-token rows (nll_ref, nll_cand, kl, same_top, p_ref, p_cand) -> the llama.cpp statistics."""
    stats = stats.double()
    n = stats.shape[0]
    if n < 2:
        raise ValueError("Need at least 2 scored tokens for quality statistics; give a longer text.")
    nll_ref, nll_cand, kl, same, p_ref, p_cand = stats.unbind(1)
    log_ratio = _mean(nll_cand - nll_ref)
    ratio = math.exp(log_ratio.value)
    dp = p_cand - p_ref
    dp2 = _mean(dp * dp)
    rms = math.sqrt(dp2.value)
    same_rate = float(same.mean())
    quantiles = {"median": 0.5, "p90": 0.9, "p99": 0.99, "p99.9": 0.999, "max": 1.0}
    return Divergence(
        tokens=n, window=window, reference_perplexity=math.exp(float(nll_ref.mean())),
        perplexity=math.exp(float(nll_cand.mean())), perplexity_ratio=Estimate(ratio, ratio * log_ratio.error),
        kl_mean=_mean(kl), kl_quantiles={k: float(torch.quantile(kl, q)) for k, q in quantiles.items()},
        same_top=Estimate(same_rate, math.sqrt(same_rate * (1 - same_rate) / n)), delta_p_mean=_mean(dp),
        delta_p_rms=Estimate(rms, dp2.error / (2 * rms) if rms > 0 else 0.0))


def _mean(x: torch.Tensor) -> Estimate:
    return Estimate(float(x.mean()), float(x.std(unbiased=True)) / math.sqrt(x.numel()))


def _token_stats(ref: torch.Tensor, cand: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(tokens, 6): nll_ref, nll_cand, KL(ref || cand), same top token, p_ref(true), p_cand(true)."""
    lp_ref, lp_cand = ref.gather(1, target[:, None])[:, 0], cand.gather(1, target[:, None])[:, 0]
    kl = (ref.exp() * (ref - cand)).sum(-1).clamp_min(0.0)
    same = (ref.argmax(-1) == cand.argmax(-1)).float()
    return torch.stack([-lp_ref, -lp_cand, kl, same, lp_ref.exp(), lp_cand.exp()], dim=1)


def _window_log_probs(model: Any, ids: torch.Tensor, start: int, first: int, end: int) -> torch.Tensor:
    """Log-probs predicting ids[first:end] from ids[start:end - 1]: (end - first, vocab), float32."""
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(ids[None, start:end - 1].to(device), use_cache=False,
                       logits_to_keep=end - first).logits[0]
    return logits.float().log_softmax(-1).cpu()
