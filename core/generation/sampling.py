"""How one request samples: token limit, temperature (0 = greedy), top-p/top-k, repetition penalty, seed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.errors import BadSettingError

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed's range


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 256
    temperature: float = 0.7  # 0 means greedy
    top_p: float = 0.95
    top_k: int = 50
    repetition_penalty: float = 1.0
    seed: int | None = None

    @classmethod
    def from_values(cls, max_new_tokens: Any, temperature: Any, top_p: Any, top_k: Any, repetition_penalty: Any,
                    seed: Any = None) -> SamplingParams:
        """Build from untrusted values (widgets, JSON): each a finite number of the right kind, else BadSettingError."""
        chosen_seed = None
        if seed is not None and seed != "":
            value = _integer("seed", seed)
            if value > MAX_SEED:
                raise BadSettingError(f"The seed must be at most {MAX_SEED:,} (or -1 for a random one).")
            chosen_seed = value if value >= 0 else None
        return cls(_integer("max new tokens", max_new_tokens), _number("temperature", temperature),
                   _number("top-p", top_p), _integer("top-k", top_k),
                   _number("repetition penalty", repetition_penalty), chosen_seed)

    def check(self, max_new_tokens_limit: int) -> None:
        """Raise BadSettingError for values no model should get (wrong types and NaN included)."""
        SamplingParams.from_values(self.max_new_tokens, self.temperature, self.top_p, self.top_k,
                                   self.repetition_penalty, self.seed)
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


def _number(name: str, value: Any) -> float:
    """A finite float from a number (or a numeric string); BadSettingError naming the setting otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadSettingError(f"The {name} must be a number, got {type(value).__name__}.")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise BadSettingError(f"The {name} must be a number, got {str(value)[:40]!r}.") from None
    if not math.isfinite(number):
        raise BadSettingError(f"The {name} must be a finite number, got {number}.")
    return number


def _integer(name: str, value: Any) -> int:
    """A whole number (5 or 5.0, not 5.5, NaN or infinity); BadSettingError naming the setting otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _number(name, value)
    if not number.is_integer():
        raise BadSettingError(f"The {name} must be a whole number, got {number}.")
    return int(number)
