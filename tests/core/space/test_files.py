"""The upload list: what the Space needs, nothing from caches or venvs, every file under the size limit."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.config import ConfigError
from core.space.config import ROOT, load_space_config
from core.space.files import REQUIRED, upload_files


def make_project(root, extra: dict[str, int]) -> None:
    for path, size in {"app.py": 10, "core/a.py": 10, "ui/b.py": 10, "assets/m/w.bin": 10, "requirements.txt": 5,
                       "README.md": 5, "spaces_config.yaml": 5, **extra}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"x" * size)


def test_project_upload_list_has_the_app_and_nothing_from_caches_venvs_or_tests():
    cfg = load_space_config()
    paths = [f.path for f in upload_files(cfg, ROOT)]
    for required in REQUIRED:
        assert any(p == required or (required.endswith("/") and p.startswith(required)) for p in paths), required
    assert "assets/models/deepseek-v3-tiny/model.safetensors" in paths
    assert not [p for p in paths if p.startswith((".venv", "tests/", ".git/")) or "__pycache__" in p
                or p.endswith(".pyc") or "/.cache/" in p]
    assert all(f.size_bytes <= cfg.upload.max_file_bytes for f in upload_files(cfg, ROOT))


def test_outside_git_the_walk_skips_venvs_and_caches(tmp_path):
    make_project(tmp_path, {".venv/lib/x.py": 5, "core/__pycache__/a.pyc": 5, ".cache/hf/blob": 5, "tests/t.py": 5})
    paths = [f.path for f in upload_files(load_space_config(), tmp_path)]
    assert paths == ["README.md", "app.py", "assets/m/w.bin", "core/a.py", "requirements.txt", "spaces_config.yaml",
                     "ui/b.py"]


def test_a_file_over_the_size_limit_is_refused_by_name(tmp_path):
    make_project(tmp_path, {"assets/big.safetensors": 2_000})
    cfg = load_space_config()
    cfg = replace(cfg, upload=replace(cfg.upload, max_file_bytes=1_000))
    with pytest.raises(ConfigError, match="assets/big.safetensors"):
        upload_files(cfg, tmp_path)


def test_excluding_a_required_folder_is_refused(tmp_path):
    make_project(tmp_path, {})
    cfg = load_space_config()
    cfg = replace(cfg, upload=replace(cfg.upload, exclude=["ui/*"]))
    with pytest.raises(ConfigError, match="ui/"):
        upload_files(cfg, tmp_path)
