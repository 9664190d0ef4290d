"""What a deploy uploads: files git does not ignore, minus secrets, hidden and excluded ones, each under the limit."""

from __future__ import annotations

import fnmatch
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.config import ConfigError
from core.space.config import SpaceConfig
from core.space.deny import hidden_reason, secret_reason

REQUIRED = ("app.py", "core/", "ui/", "assets/", "requirements.txt", "README.md", "spaces_config.yaml")
NEVER = (".venv/*", "*/.venv/*", "*__pycache__/*", "*.pyc", ".git/*", ".cache/*", ".pytest_cache/*",
         ".ruff_cache/*", "*.egg-info/*")  # caches and venvs, even if someone tracks them by mistake
SKIP_DIRS = {".git", ".venv", "__pycache__", ".cache", ".pytest_cache", ".ruff_cache", "node_modules"}


@dataclass(frozen=True)
class UploadFile:
    path: str  # repo-relative, forward slashes
    size_bytes: int


@dataclass(frozen=True)
class LeftOut:
    path: str  # repo-relative
    reason: str  # for people: "secret: name matches *.pem", "upload.exclude: tests/*"...


@dataclass(frozen=True)
class Selection:
    files: list[UploadFile]
    left_out: list[LeftOut]


def upload_files(cfg: SpaceConfig, root: Path) -> list[UploadFile]:
    """Every file a deploy would upload, sorted; ConfigError when one is too large or a required one is missing."""
    return select_files(cfg, root).files


def select_files(cfg: SpaceConfig, root: Path) -> Selection:
    """The upload list and every file left out with its reason; ConfigError as upload_files."""
    chosen, left_out = [], []
    for path in sorted(candidate_paths(root)):
        reason = leave_out_reason(path, cfg)
        if reason:
            left_out.append(LeftOut(path, reason))
        elif (root / path).is_file():
            chosen.append(path)
    files = [UploadFile(p, (root / p).stat().st_size) for p in chosen]
    too_big = [f for f in files if f.size_bytes > cfg.upload.max_file_bytes]
    if too_big:
        names = ", ".join(f"{f.path} ({f.size_bytes / 1e6:.1f} MB)" for f in too_big)
        raise ConfigError(f"Files over upload.max_file_bytes ({cfg.upload.max_file_bytes / 1e6:.0f} MB): {names}. "
                          "Exclude them in spaces_config.yaml or shrink them.")
    paths = [f.path for f in files]
    missing = [r for r in REQUIRED if not any(p == r or (r.endswith("/") and p.startswith(r)) for p in paths)]
    if missing:
        raise ConfigError(f"The upload would miss {', '.join(missing)}: check upload.exclude in spaces_config.yaml.")
    return Selection(files, left_out)


def leave_out_reason(path: str, cfg: SpaceConfig) -> str | None:
    """Why a candidate is not uploaded (secrets first: a secret is never published, whatever else says), or None."""
    reason = secret_reason(path)
    if reason:
        return reason
    for pattern in NEVER:
        if fnmatch.fnmatch(path, pattern):
            return f"cache or venv: {pattern}"
    for pattern in cfg.upload.exclude:
        if fnmatch.fnmatch(path, pattern):
            return f"upload.exclude: {pattern}"
    return hidden_reason(path, cfg.upload.allow_hidden)


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


def describe_left_out(left_out: list[LeftOut]) -> str:
    """Secrets and hidden files one a line (each must be seen); excluded folders summed up per pattern."""
    lines, counts = [], {}
    for item in left_out:
        if item.reason.startswith(("secret", "hidden")):
            lines.append(f"  {item.path}  ({item.reason})")
        else:
            counts[item.reason] = counts.get(item.reason, 0) + 1
    lines += [f"  {n} file{'s' * (n != 1)}  ({reason})" for reason, n in counts.items()]
    return "\n".join([f"Left out ({len(left_out)} files):", *lines]) if left_out else "Left out: nothing."
