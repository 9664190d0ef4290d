"""ZeroGPU: import `spaces` before torch, wrap GPU work in @spaces.GPU, size each request's GPU slot.

Imports neither torch nor gradio, so app.py can call import_spaces_first() before anything else.
Off ZeroGPU (SPACES_ZERO_GPU unset) nothing here imports `spaces`, and the app does not need it.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import PlaygroundError

GpuDecorator = Callable[[Callable[..., Any], Callable[..., int]], Callable[..., Any]]  # (task, duration) -> task


@dataclass(frozen=True)
class ZeroGpuSection:
    """How GPU slots are sized on ZeroGPU (spaces_config.yaml's zero_gpu section; read at start-up by app.py)."""

    enabled: bool = False
    size: str = "large"
    max_duration_s: int = 120
    overhead_s: float = 10.0
    load_s: float = 60.0
    prefill_tokens_per_s: float = 4000.0
    decode_tokens_per_s: dict[str, float] = field(default_factory=dict)  # precision -> new tokens per second
    default_decode_tokens_per_s: float = 8.0


class ZeroGpuSetupError(PlaygroundError):
    """ZeroGPU is on but this process cannot use it as it is set up."""


def zero_gpu_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """True on a ZeroGPU Space (the variable the `spaces` package itself reads)."""
    return environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def import_spaces_first(environ: Mapping[str, str] = os.environ) -> bool:
    """On ZeroGPU import `spaces` now, before torch (it patches torch on import); elsewhere do nothing."""
    if not zero_gpu_enabled(environ):
        return False
    if "torch" in sys.modules and "spaces" not in sys.modules:
        raise ZeroGpuSetupError("torch was imported before `spaces`: on ZeroGPU, app.py must call "
                                "core.zerogpu.import_spaces_first() before importing anything that imports torch.")
    try:
        import spaces  # noqa: F401
    except ImportError as exc:
        raise ZeroGpuSetupError("SPACES_ZERO_GPU is set but the `spaces` package is missing (ZeroGPU Spaces "
                                "preinstall it; elsewhere `pip install spaces`).") from exc
    return True


def gpu_decorator(size: str = "large", environ: Mapping[str, str] = os.environ) -> GpuDecorator | None:
    """spaces.GPU with a per-call duration on ZeroGPU; None elsewhere (GPU work then runs in-process)."""
    if not zero_gpu_enabled(environ):
        return None
    import spaces

    def decorate(task: Callable[..., Any], duration: Callable[..., int]) -> Callable[..., Any]:
        return spaces.GPU(task, duration=duration, size=size)

    return decorate


@dataclass(frozen=True)
class GpuBudget:
    duration_s: int  # the GPU slot requested for one call
    max_new_tokens: int  # what the request may generate inside that slot
    note: str = ""  # for the user when the request was cut to fit


def plan_budget(zero: ZeroGpuSection, prompt_tokens: int, max_new_tokens: int, precision: str,
                resident: bool) -> GpuBudget:
    """The GPU slot a request needs (overhead + load + prefill + decode), clamped to zero.max_duration_s.

    When the request would not fit, max_new_tokens is lowered so that it does, and the note says so:
    ZeroGPU aborts a call that outlives its slot, which would lose the whole answer.
    """
    rate = float(zero.decode_tokens_per_s.get(precision, zero.default_decode_tokens_per_s))  # new tokens / s
    fixed = zero.overhead_s + (0.0 if resident else zero.load_s) + prompt_tokens / zero.prefill_tokens_per_s
    wanted = fixed + max_new_tokens / rate
    if wanted <= zero.max_duration_s:
        return GpuBudget(max(1, math.ceil(wanted)), max_new_tokens)
    fits = max(1, math.floor((zero.max_duration_s - fixed) * rate))
    if fits >= max_new_tokens:
        return GpuBudget(zero.max_duration_s, max_new_tokens)
    note = (f"ZeroGPU gives one request at most {zero.max_duration_s} s of GPU time (this one needed about "
            f"{wanted:.0f} s), so max new tokens was lowered from {max_new_tokens:,} to {fits:,}.")
    return GpuBudget(zero.max_duration_s, fits, note)
