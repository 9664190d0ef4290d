"""LoRA adapters applied on top of a base model at load time (peft is imported only when one is used)."""

from __future__ import annotations

from typing import Any

from core.errors import ModelUnavailableError


def attach_adapter(model: Any, adapter_path: str, merge: bool) -> Any:
    """Apply a saved LoRA adapter; merged into the weights when they are plain tensors (no per-step cost)."""
    from peft import PeftModel

    try:
        peft_model = PeftModel.from_pretrained(model, adapter_path, is_trainable=False)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelUnavailableError(f"Cannot apply the adapter in {adapter_path}: {exc}") from exc
    return peft_model.merge_and_unload() if merge else peft_model
