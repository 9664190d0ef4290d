"""Folders for files a tab hands to gradio for download (exports, zips): one root, old folders swept.

Gradio copies a returned file into its own cache (which `delete_cache` sweeps); the original is needed only until
then. Each new export folder therefore removes the ones older than KEEP_S, so exports never pile up in /tmp."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

KEEP_S = 600.0  # an export's original outlives gradio's copy by this much at least


def export_root() -> Path:
    return Path(tempfile.gettempdir()) / "deepseek-playground-exports"


def export_folder(prefix: str, keep_s: float = KEEP_S) -> Path:
    """A fresh folder under export_root(); folders there older than keep_s are deleted first."""
    root = export_root()
    root.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - keep_s
    for old in root.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        except FileNotFoundError:  # another request swept it first
            continue
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))
