"""The layer rules in pyproject.toml ([tool.importlinter]), checked with import-linter on the real tree, and shown to
fail on deliberate violations planted in a copy of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = "from importlinter.cli import lint_imports; raise SystemExit(lint_imports(no_cache=True))"


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_every_layer_contract():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


VIOLATIONS = [
    ("core/errors.py", "import gradio", "core never imports gradio"),
    ("ui/controls.py", "import torch", "ui never imports torch or transformers"),
    ("core/quant/weights.py", "import core.serving.registry", "core layers"),
    ("core/models/catalog.py", "import core.space.config", "only core.space"),
    ("core/generation/prompting.py", "import core.generation.stream", "no import cycles"),
]


@pytest.mark.parametrize(("path", "line", "contract"), VIOLATIONS, ids=[v[2].split()[0] + v[0] for v in VIOLATIONS])
def test_a_planted_violation_breaks_its_contract(tmp_path, path, line, contract):
    for package in ("core", "ui"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / path
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # planted\n", encoding="utf-8")
    result = lint(tmp_path)
    assert result.returncode != 0
    broken = [text for text in result.stdout.splitlines() if "BROKEN" in text]
    assert any(contract.removesuffix(" BROKEN") in text for text in broken), result.stdout[-3000:]
