"""spaces_config.yaml: frozen dataclasses, loaded strictly (unknown keys and bad values name the key)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from core.config import ConfigError, build_dataclass
from core.models.catalog import default_catalog
from core.paths import ROOT
from core.serving.zerogpu import ZeroGpuSection

SPACE_CONFIG = ROOT / "spaces_config.yaml"

Tier = Literal["zero_gpu", "gpu", "cpu"]
TIERS: tuple[Tier, ...] = get_args(Tier)
COLORS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")
ZERO_GPU_HARDWARE = "zero-a10g"  # huggingface_hub's SpaceHardware.ZERO_A10G: ZeroGPU, whatever chip it runs on
ZERO_GPU_LIMIT_S = 300  # ZeroGPU refuses a longer duration for one call
SHORT_DESCRIPTION_MAX = 60  # characters the Hub accepts


@dataclass(frozen=True)
class SpaceSection:
    repo_id: str
    title: str
    emoji: str
    color_from: str
    color_to: str
    short_description: str
    license: str
    sdk_version: str
    python_version: str = "3.11"
    app_file: str = "app.py"
    hardware: str = "cpu-basic"
    private: bool = False
    startup_duration_timeout: str = "30m"
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DefaultModels:
    text: str
    vision: str


@dataclass(frozen=True)
class SpaceModels:
    defaults: dict[str, DefaultModels]  # Tier -> the models each tab opens with
    preload_from_hub: list[str] = field(default_factory=list)

    def for_tier(self, tier: Tier) -> DefaultModels:
        """The default models on this kind of hardware."""
        return self.defaults[tier]


@dataclass(frozen=True)
class UploadSection:
    max_file_bytes: int = 10_000_000
    exclude: list[str] = field(default_factory=list)  # fnmatch patterns on repo-relative paths
    allow_hidden: list[str] = field(default_factory=list)  # dot-files to publish anyway (never secrets)


@dataclass(frozen=True)
class SpaceConfig:
    space: SpaceSection
    models: SpaceModels
    zero_gpu: ZeroGpuSection = field(default_factory=ZeroGpuSection)
    variables: dict[str, str] = field(default_factory=dict)
    upload: UploadSection = field(default_factory=UploadSection)


def load_space_config(path: Path = SPACE_CONFIG) -> SpaceConfig:
    """Read and check spaces_config.yaml; ConfigError names the offending key."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}") from exc
    if isinstance(raw, dict) and isinstance(raw.get("models"), dict):
        raw = {**raw, "models": _models_raw(raw["models"])}
    try:
        cfg = build_dataclass(SpaceConfig, raw, "")
    except TypeError as exc:  # a dataclass without a default got no value
        raise ConfigError(f"A required key is missing from {path}: {exc}") from None
    check_space_config(cfg)
    return cfg


def _models_raw(raw: dict[str, Any]) -> dict[str, Any]:
    """Turn models.defaults' plain mappings into DefaultModels, checking tier names and keys."""
    if not isinstance(raw.get("defaults"), dict):
        raise ConfigError("'models.defaults' must be a mapping of zero_gpu / gpu / cpu to {text, vision}.")
    defaults = {}
    for tier, value in raw["defaults"].items():
        if tier not in TIERS:
            raise ConfigError(f"Unknown config key 'models.defaults.{tier}'. Known: {', '.join(TIERS)}.")
        defaults[tier] = build_dataclass(DefaultModels, value, f"models.defaults.{tier}")
    return {**raw, "defaults": defaults}


def check_space_config(cfg: SpaceConfig) -> None:
    """Values the Hub or the app would reject, each reported with its key."""
    s = cfg.space
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", s.repo_id):
        raise ConfigError(f"'space.repo_id' must look like owner/name, got {s.repo_id!r}.")
    for key, color in (("space.color_from", s.color_from), ("space.color_to", s.color_to)):
        if color not in COLORS:
            raise ConfigError(f"'{key}' must be one of {', '.join(COLORS)}, got {color!r}.")
    if not s.short_description or len(s.short_description) > SHORT_DESCRIPTION_MAX:
        raise ConfigError(f"'space.short_description' must be 1-{SHORT_DESCRIPTION_MAX} characters.")
    _check_hardware(cfg)
    _check_models(cfg.models)
    for key, value in cfg.variables.items():
        if not isinstance(value, str):
            raise ConfigError(f"'variables.{key}' must be a string (quote it), got {value!r}.")


def _check_hardware(cfg: SpaceConfig) -> None:
    from huggingface_hub import SpaceHardware

    known = [h.value for h in SpaceHardware]
    if cfg.space.hardware not in known:
        raise ConfigError(f"'space.hardware' must be one of {', '.join(known)}, got {cfg.space.hardware!r}.")
    if cfg.zero_gpu.enabled != (cfg.space.hardware == ZERO_GPU_HARDWARE):
        raise ConfigError(f"'zero_gpu.enabled' is {cfg.zero_gpu.enabled} but 'space.hardware' is "
                          f"{cfg.space.hardware}: ZeroGPU runs exactly on {ZERO_GPU_HARDWARE}.")
    if not 1 <= cfg.zero_gpu.max_duration_s <= ZERO_GPU_LIMIT_S:
        raise ConfigError(f"'zero_gpu.max_duration_s' must be 1-{ZERO_GPU_LIMIT_S} (ZeroGPU's limit per call).")
    speeds = [cfg.zero_gpu.default_decode_tokens_per_s, cfg.zero_gpu.prefill_tokens_per_s,
              *cfg.zero_gpu.decode_tokens_per_s.values()]
    if not all(isinstance(v, int | float) and v > 0 for v in speeds):
        raise ConfigError("'zero_gpu' token speeds must be positive numbers.")
    if cfg.zero_gpu.size not in ("large", "xlarge"):
        raise ConfigError(f"'zero_gpu.size' must be large or xlarge, got {cfg.zero_gpu.size!r}.")


def _check_models(models: SpaceModels) -> None:
    catalog = default_catalog()
    hub_ids = [e.model_id for e in catalog.entries if not e.bundled]
    for i, model_id in enumerate(models.preload_from_hub):
        if model_id not in hub_ids:
            raise ConfigError(f"'models.preload_from_hub[{i}]' is {model_id!r}, not a Hub model of the catalog.")
    for tier in TIERS:
        if tier not in models.defaults:
            raise ConfigError(f"'models.defaults.{tier}' is missing.")
        for kind in ("text", "vision"):
            model_id = getattr(models.defaults[tier], kind)
            if model_id not in hub_ids or catalog.get(model_id).kind != kind:
                raise ConfigError(f"'models.defaults.{tier}.{kind}' is {model_id!r}, not a {kind} Hub model "
                                  f"of the catalog.")
