"""Running on a Space: the default models from spaces_config.yaml per hardware, preloaded at start-up on ZeroGPU."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import replace

from core.config import AppConfig
from core.errors import PlaygroundError
from core.models.hardware import Hardware
from core.serving.registry import ModelRegistry
from core.serving.zerogpu import zero_gpu_enabled
from core.space.config import SpaceConfig, Tier, load_space_config

log = logging.getLogger(__name__)


def on_space(environ: Mapping[str, str] = os.environ) -> bool:
    """True inside a Hugging Face Space (the Hub sets SPACE_ID there)."""
    return bool(environ.get("SPACE_ID"))


def hardware_tier(hardware: Hardware, environ: Mapping[str, str] = os.environ) -> Tier:
    """Which models.defaults entry applies: ZeroGPU, a dedicated GPU, or CPU."""
    if zero_gpu_enabled(environ):
        return "zero_gpu"
    return "gpu" if hardware.device == "cuda" else "cpu"


def with_space_defaults(cfg: AppConfig, hardware: Hardware, space: SpaceConfig | None = None,
                        environ: Mapping[str, str] = os.environ) -> AppConfig:
    """On a Space: the tier's real DeepSeek models as defaults, listening on all interfaces. Elsewhere: cfg."""
    if not on_space(environ):
        return cfg
    defaults = (space or load_space_config()).models.for_tier(hardware_tier(hardware, environ))
    models = replace(cfg.models, default_text=defaults.text, default_vision=defaults.vision)
    return replace(cfg, models=models, server=replace(cfg.server, host="0.0.0.0"))  # the Space's proxy connects


def preload_defaults(registry: ModelRegistry, cfg: AppConfig, environ: Mapping[str, str] = os.environ) -> list[str]:
    """On ZeroGPU load the default models onto CUDA before launch, as ZeroGPU expects; returns the ids loaded.

    A model that fails to load is logged and skipped: its tab reports the error when it is used.
    """
    if not zero_gpu_enabled(environ):
        return []
    loaded = []
    for model_id in (cfg.models.default_text, cfg.models.default_vision):
        try:
            registry.get(model_id, registry.hardware.full_precision)
            loaded.append(model_id)
        except PlaygroundError as exc:
            log.warning("Not preloaded: %s", exc)
    return loaded
