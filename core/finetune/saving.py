"""Write a model folder all-or-nothing: into a hidden sibling, then one rename; a failed save leaves nothing."""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import PlaygroundError

COMPLETE_MARKER = "finetune.json"  # written last: a folder without it is not a finished model


class SaveError(PlaygroundError):
    """The trained model could not be written."""


def save_atomically(out_dir: Path, write: Callable[[Path], None], manifest: dict[str, Any]) -> Path:
    """Call write(tmp) then add the manifest and rename tmp to out_dir (replacing an older one)."""
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        write(tmp)
        (tmp / COMPLETE_MARKER).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SaveError(_message(out_dir, exc)) from exc
    return out_dir


def _message(out_dir: Path, exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return f"The disk is full: could not save the model to {out_dir}; nothing was written. Free some space."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"No permission to write {out_dir}; nothing was written. Choose another output folder."
    return f"Could not save the model to {out_dir} ({exc.strerror or exc}); nothing was written."


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a finished fine-tune folder, or SaveError when the folder is not one."""
    path = Path(folder) / COMPLETE_MARKER
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise SaveError(f"{folder} is not a finished fine-tuned model (no {COMPLETE_MARKER}).") from None
