"""spaces_config.yaml loads strictly: every bad value is reported with its key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import ConfigError
from core.models.catalog import default_catalog
from core.space.config import ROOT, SPACE_CONFIG, TIERS, load_space_config


def write_variant(tmp_path: Path, change: Any) -> Path:
    """spaces_config.yaml with one change applied by change(raw)."""
    raw = yaml.safe_load(SPACE_CONFIG.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "spaces_config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_project_config_defaults_are_real_deepseek_hub_models_for_every_tier():
    cfg = load_space_config()
    catalog = default_catalog()
    for tier in TIERS:
        models = cfg.models.for_tier(tier)
        assert catalog.get(models.text).kind == "text" and not catalog.get(models.text).bundled
        assert catalog.get(models.vision).kind == "vision" and not catalog.get(models.vision).bundled
    assert cfg.zero_gpu.enabled and cfg.space.hardware == "zero-a10g"


def test_sdk_version_is_the_gradio_version_requirements_pin():
    pin = re.search(r"^gradio==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pin and load_space_config().space.sdk_version == pin.group(1)


@pytest.mark.parametrize(("change", "key"), [
    (lambda raw: raw["space"].update(colour="blue"), "space.colour"),
    (lambda raw: raw.update(hardware="t4-small"), "hardware"),
    (lambda raw: raw["zero_gpu"].update(max_tokens=5), "zero_gpu.max_tokens"),
    (lambda raw: raw["models"]["defaults"].update(tpu={"text": "x", "vision": "y"}), "models.defaults.tpu"),
    (lambda raw: raw["models"]["defaults"]["gpu"].update(audio="x"), "models.defaults.gpu.audio"),
    (lambda raw: raw["models"]["defaults"]["cpu"].update(text="deepseek-community/deepseek-vl-1.3b-chat"),
     "models.defaults.cpu.text"),
    (lambda raw: raw["models"]["defaults"].pop("zero_gpu"), "models.defaults.zero_gpu"),
    (lambda raw: raw["models"]["preload_from_hub"].append("bundled/qwen2-tiny"), "models.preload_from_hub[3]"),
    (lambda raw: raw["space"].update(color_to="teal"), "space.color_to"),
    (lambda raw: raw["space"].update(hardware="h100-huge"), "space.hardware"),
    (lambda raw: raw["space"].update(hardware="t4-small"), "zero_gpu.enabled"),
    (lambda raw: raw["zero_gpu"].update(max_duration_s=900), "zero_gpu.max_duration_s"),
    (lambda raw: raw["space"].update(short_description="x" * 61), "space.short_description"),
    (lambda raw: raw["space"].update(repo_id="no-owner"), "space.repo_id"),
    (lambda raw: raw["space"].update(private="yes"), "space.private"),
    (lambda raw: raw["variables"].update(DEBUG=1), "variables.DEBUG"),
])
def test_bad_config_is_refused_naming_the_key(tmp_path, change, key):
    with pytest.raises(ConfigError) as err:
        load_space_config(write_variant(tmp_path, change))
    assert f"'{key}'" in str(err.value)


def test_missing_config_file_is_a_readable_error(tmp_path):
    with pytest.raises(ConfigError, match="Cannot read"):
        load_space_config(tmp_path / "nope.yaml")


def test_a_missing_required_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="title"):
        load_space_config(write_variant(tmp_path, lambda raw: raw["space"].pop("title")))
