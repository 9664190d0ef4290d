from pathlib import Path

import pytest

from core.errors import UnknownModelError
from core.models.catalog import default_catalog


def test_bundled_models_are_in_standard_layout():
    for entry in default_catalog().entries:
        if entry.bundled:
            folder = Path(entry.source)
            assert (folder / "config.json").exists(), entry.model_id
            assert any(folder.glob("*.safetensors")), entry.model_id
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            assert size < 10 * 1024 * 1024, f"{entry.model_id} is {size} bytes; Spaces reject >10 MB without LFS"


def test_real_deepseek_ids_stay_in_the_catalog():
    ids = {e.model_id for e in default_catalog().entries}
    assert "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B" in ids
    assert "deepseek-community/deepseek-vl-1.3b-chat" in ids
    assert not any(e.trust_remote_code for e in default_catalog().entries)


def test_unknown_model_names_the_choices():
    with pytest.raises(UnknownModelError, match="bundled/deepseek-v3-tiny"):
        default_catalog().get("nope/model")


def test_local_paths_point_hub_ids_at_folders():
    catalog = default_catalog({"deepseek-ai/deepseek-llm-7b-chat": "/models/llm7b"})
    assert catalog.get("deepseek-ai/deepseek-llm-7b-chat").source == "/models/llm7b"
