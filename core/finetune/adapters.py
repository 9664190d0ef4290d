"""Trained LoRA adapters as chat models: a catalog entry naming base + adapter, applied at load time."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from core.errors import ModelUnavailableError
from core.finetune.saving import SaveError, read_manifest
from core.models.catalog import CatalogEntry

FINETUNED_PREFIX = "finetuned/"


def adapter_entry(base: CatalogEntry, adapter_dir: str | Path, name: str | None = None) -> CatalogEntry:
    """A catalog entry that loads `base` with the LoRA adapter in adapter_dir on top."""
    folder = Path(adapter_dir).resolve()
    try:
        manifest = read_manifest(folder)
    except SaveError as exc:
        raise ModelUnavailableError(str(exc)) from None
    if manifest.get("task") != "lora":
        raise ModelUnavailableError(f"{folder} holds a {manifest.get('task')} model, not a LoRA adapter for chat.")
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", name or folder.name).strip("-") or "adapter"
    return replace(base, model_id=f"{FINETUNED_PREFIX}{label}", adapter_path=str(folder),
                   description=f"LoRA adapter {folder.name} on {base.model_id}.",
                   params=f"{base.params} + LoRA".strip())
