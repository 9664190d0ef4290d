"""Where the app reads and writes: ONE assets root (shipped with the code) and ONE cache root (written at runtime)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository / Space folder
ASSETS = ROOT / "assets"  # bundled checkpoints, reference texts, example documents and images
REFERENCE_TEXT = ASSETS / "text" / "reference.txt"  # held-out text the quality metrics score
CALIBRATION_TEXT = ASSETS / "text" / "calibration.txt"  # GPTQ calibration passages (training split)


def cache_root(environ: Mapping[str, str] = os.environ) -> Path:
    """$PLAYGROUND_CACHE, or ~/.cache/deepseek-playground when it is unset or empty."""
    return Path(environ.get("PLAYGROUND_CACHE") or Path.home() / ".cache" / "deepseek-playground")
