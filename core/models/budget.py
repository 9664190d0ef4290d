"""Memory a model will need, estimated before loading it, and the message when it cannot fit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

from core.models.catalog import CatalogEntry
from core.models.construction import build_on_meta
from core.models.memory import format_bytes

MARGIN = 0.10  # on top of the weights: layers kept in full precision, load-time copies, small buffers
FULL_BYTES = 4.0  # fp32: the safe guess for a precision this module does not know yet

# Bytes per parameter at load time. Quantized precisions are absent on purpose: quanto, torchao and GPTQ
# load the full-precision weights first and quantize them after, so the load peaks at FULL_BYTES.
BYTES_PER_PARAM = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0,
                   # GGUF: llama.cpp converts and quantizes in a subprocess, then maps the file (8.5 / 4.5 / ~4.9
                   # bits per weight); its KV cache comes on top and is measured once loaded
                   "gguf-q8_0": 1.0625, "gguf-q4_0": 0.5625, "gguf-q4_k_m": 0.61}


def bytes_per_param(precision: Any) -> float:
    """Bytes each weight takes at this precision; unknown precisions count as full precision."""
    return BYTES_PER_PARAM.get(str(getattr(precision, "value", precision)), FULL_BYTES)


def count_parameters(entry: CatalogEntry) -> int | None:
    """Parameters and buffers of entry's architecture, built on the meta device (no weights read); None if unknown."""
    try:
        config = AutoConfig.from_pretrained(entry.source, trust_remote_code=entry.trust_remote_code)
    except (OSError, ValueError):  # offline Hub id without a local copy: the load itself will explain
        return None
    model_cls = AutoModelForImageTextToText if entry.kind == "vision" else AutoModelForCausalLM
    model = build_on_meta(model_cls, config, entry.trust_remote_code)
    tied = {id(t) for t in model.parameters()}
    buffers = sum(b.numel() for b in model.buffers() if id(b) not in tied)
    return sum(p.numel() for p in model.parameters()) + buffers


def estimate_bytes(entry: CatalogEntry, precision: Any) -> int | None:
    """Bytes the model will hold once loaded at precision (weights + MARGIN); None when the config is unreachable."""
    params = count_parameters(entry)
    if params is None:
        return None
    return int(params * bytes_per_param(precision) * (1 + MARGIN))


def refusal_message(model: str, need: int, free: int, budget: int | None,
                    resident: Sequence[tuple[Any, int]]) -> str:
    """Why a load was refused: what it needs, what is missing, what is resident as (model, requests running)."""
    where = f"the {format_bytes(budget)} memory budget" if budget is not None else "free memory"
    held = "; ".join(f"{m.key.model_id} {m.key.precision.value} ({format_bytes(m.memory_bytes)}, "
                     f"{running} running)" for m, running in resident) or "nothing"
    return (f"Not enough memory to load {model}: it needs about {format_bytes(need)}, {format_bytes(max(free, 0))} "
            f"is free in {where} ({format_bytes(need - max(free, 0))} missing). Resident now: {held}. "
            "Models answering requests are never unloaded; try again when they finish, unload one in the "
            "Resources tab, or pick a smaller precision.")
