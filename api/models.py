"""GET /v1/models: the catalog models that can answer here, which take images, and their precisions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.models.catalog import CatalogEntry
from core.quant.backends import available_precisions
from core.serving.registry import ModelRegistry

OWNER = "deepseek-playground"


def hub_offline() -> bool:
    """True when the Hugging Face Hub must not be used (HF_HUB_OFFLINE set, as in the tests and airgapped hosts)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def can_serve(entry: CatalogEntry) -> bool:
    """Bundled, fine-tuned and locally copied models always; Hub ids only when the Hub may be reached."""
    return Path(entry.source).is_dir() or not hub_offline()


def model_card(entry: CatalogEntry, registry: ModelRegistry) -> dict[str, Any]:
    """OpenAI's model object plus what a client needs to pick: modalities, window, precisions, residency."""
    resident = {m.key.precision.value for m in registry.resident() if m.key.model_id == entry.model_id}
    return {"id": entry.model_id, "object": "model", "created": 0, "owned_by": OWNER,
            "input_modalities": ["text", "image"] if entry.kind == "vision" else ["text"],
            "context_window": entry.context_window, "description": entry.description,
            "precisions": [p.value for p in available_precisions(entry, registry.hardware)],
            "resident_precisions": sorted(resident)}


def model_list(registry: ModelRegistry) -> list[dict[str, Any]]:
    """Every catalog model (fine-tuned ones included) that can answer on this server now."""
    return [model_card(e, registry) for e in registry.catalog.entries if can_serve(e)]
