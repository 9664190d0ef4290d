"""The app's run folders: a unique name each, never replaced; interrupted runs kept apart; old runs pruned by rule."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from pathlib import Path

from core.finetune.saving import COMPLETE_MARKER

INTERRUPTED = "interrupted"  # sub-folder for runs whose browser session went away mid-training


def reserve_run_dir(root: Path) -> Path:
    """A new, empty run folder under root: timestamp plus random suffix, created exclusively (never reused)."""
    root.mkdir(parents=True, exist_ok=True)
    while True:
        folder = root / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        try:
            folder.mkdir()  # atomic: two jobs can never get the same folder
            return folder
        except FileExistsError:
            continue


def set_aside_interrupted(folder: Path) -> Path:
    """Move a finished-but-interrupted run under root/interrupted/ and mark its manifest; returns the new path."""
    target = folder.parent / INTERRUPTED / folder.name
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(folder, target)
    manifest_path = target / COMPLETE_MARKER
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest["interrupted"] = "the browser session that started it disconnected; training stopped early"
        tmp = manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        os.replace(tmp, manifest_path)
    return target


def finished_runs(root: Path) -> list[Path]:
    """Run folders with a manifest (finished or interrupted), oldest first."""
    folders = [*root.glob("run-*"), *(root / INTERRUPTED).glob("run-*")]
    done = [f for f in folders if (f / COMPLETE_MARKER).exists()]
    return sorted(done, key=lambda f: (f / COMPLETE_MARKER).stat().st_mtime)


def prune_runs(root: Path, keep: int, max_total_bytes: int | None) -> list[Path]:
    """Delete the oldest finished runs until at most `keep` are left within the disk budget; returns them."""
    runs = finished_runs(root)
    sizes = {r: folder_bytes(r) for r in runs}
    deleted = []
    while runs and (len(runs) > keep or sum(sizes[r] for r in runs) > (max_total_bytes or float("inf"))):
        oldest = runs.pop(0)
        shutil.rmtree(oldest, ignore_errors=True)
        deleted.append(oldest)
    return deleted


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under folder."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
