"""What a deploy uploads: the files git does not ignore, minus the excluded ones, each under the size limit."""

from __future__ import annotations

import fnmatch
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.config import ConfigError
from core.space.config import SpaceConfig

REQUIRED = ("app.py", "core/", "ui/", "assets/", "requirements.txt", "README.md", "spaces_config.yaml")
NEVER = (".venv/*", "*/.venv/*", "*__pycache__/*", "*.pyc", ".git/*", ".cache/*", ".pytest_cache/*",
         ".ruff_cache/*", "*.egg-info/*")  # caches and venvs, even if someone tracks them by mistake
SKIP_DIRS = {".git", ".venv", "__pycache__", ".cache", ".pytest_cache", ".ruff_cache", "node_modules"}


@dataclass(frozen=True)
class UploadFile:
    path: str  # repo-relative, forward slashes
    size_bytes: int


def upload_files(cfg: SpaceConfig, root: Path) -> list[UploadFile]:
    """Every file a deploy would upload, sorted; ConfigError when one is too large or a required one is missing."""
    patterns = (*NEVER, *cfg.upload.exclude)
    chosen = [p for p in candidate_paths(root) if not any(fnmatch.fnmatch(p, pat) for pat in patterns)]
    files = [UploadFile(p, (root / p).stat().st_size) for p in sorted(chosen) if (root / p).is_file()]
    too_big = [f for f in files if f.size_bytes > cfg.upload.max_file_bytes]
    if too_big:
        names = ", ".join(f"{f.path} ({f.size_bytes / 1e6:.1f} MB)" for f in too_big)
        raise ConfigError(f"Files over upload.max_file_bytes ({cfg.upload.max_file_bytes / 1e6:.0f} MB): {names}. "
                          "Exclude them in spaces_config.yaml or shrink them.")
    paths = [f.path for f in files]
    missing = [r for r in REQUIRED if not any(p == r or (r.endswith("/") and p.startswith(r)) for p in paths)]
    if missing:
        raise ConfigError(f"The upload would miss {', '.join(missing)}: check upload.exclude in spaces_config.yaml.")
    return files


def candidate_paths(root: Path) -> list[str]:
    """Files git does not ignore (tracked or new); a plain walk where root is not a git checkout."""
    try:
        command = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
        out = subprocess.run(command, cwd=root, capture_output=True, check=True, timeout=30)
        return [p for p in out.stdout.decode("utf-8").split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        found = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
            found += [Path(folder, n).relative_to(root).as_posix() for n in names]
        return found


def describe(files: list[UploadFile]) -> str:
    """A listing for people: one file a line, then the count and total size."""
    lines = [f"{f.size_bytes:>12,}  {f.path}" for f in files]
    total = sum(f.size_bytes for f in files)
    return "\n".join([*lines, f"{len(files)} files, {total / 1e6:.1f} MB"])
