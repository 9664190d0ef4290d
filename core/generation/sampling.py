"""How one request samples: token limit, temperature (0 = greedy), top-p/top-k, repetition penalty, seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import BadSettingError


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 256
    temperature: float = 0.7  # 0 means greedy
    top_p: float = 0.95
    top_k: int = 50
    repetition_penalty: float = 1.0
    seed: int | None = None

    def check(self, max_new_tokens_limit: int) -> None:
        """Raise BadSettingError for values no model should get."""
        if not 1 <= self.max_new_tokens <= max_new_tokens_limit:
            raise BadSettingError(f"Max new tokens must be between 1 and {max_new_tokens_limit:,}.")
        if not 0 <= self.temperature <= 5 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise BadSettingError("Temperature must be 0-5, top-p in (0, 1], top-k at least 0.")
        if not 0.5 <= self.repetition_penalty <= 3:
            raise BadSettingError("Repetition penalty must be between 0.5 and 3.")

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for model.generate."""
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "repetition_penalty": self.repetition_penalty}
        if self.temperature == 0:
            return {**kwargs, "do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        return {**kwargs, "do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k}
