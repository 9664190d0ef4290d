"""A process's resident memory split by kind of mapping, from /proc/<pid>/smaps (Linux): what grows in a soak.

Kinds: the brk heap (glibc's main arena), anonymous mappings by size (Python's 1 MiB obmalloc arenas and small
mmaps; glibc's 64 MiB per-thread arenas and thread stacks; big tensors), shared libraries, and other files
(e.g. mmap'd safetensors). Elsewhere every kind reads as empty.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

MIB = 1 << 20


def rss_by_kind(pid: int) -> dict[str, int]:
    """Resident bytes per kind of mapping of process pid; {} where /proc/<pid>/smaps cannot be read."""
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return {}
    parts: dict[str, int] = defaultdict(int)
    kind = ""
    for line in text.splitlines():
        head = line.split()
        if not head:
            continue
        if "-" in head[0] and not head[0].endswith(":"):  # a mapping's header: range perms offset dev inode [path]
            start, end = (int(x, 16) for x in head[0].split("-"))
            kind = _kind(head[5] if len(head) > 5 else "", end - start)
        elif head[0] == "Rss:":
            parts[kind] += int(head[1]) * 1024
    return dict(parts)


def _kind(path: str, size: int) -> str:
    if path == "[heap]":
        return "brk heap"
    if path.startswith("[stack"):
        return "main stack"
    if path.startswith("["):
        return "kernel"
    if path:
        return "shared libraries" if ".so" in Path(path).name else "other files"
    if size <= MIB:
        return "anon <= 1 MiB"
    return "anon 1-64 MiB" if size <= 64 * MIB else "anon > 64 MiB"


def describe_growth(before: dict[str, int], after: dict[str, int]) -> str:
    """One line per kind: MiB before -> after (change), largest change first."""
    kinds = sorted(set(before) | set(after), key=lambda k: -abs(after.get(k, 0) - before.get(k, 0)))
    return "\n".join(f"  {k:<17} {before.get(k, 0) / MIB:8.1f} -> {after.get(k, 0) / MIB:8.1f} MiB "
                     f"({(after.get(k, 0) - before.get(k, 0)) / MIB:+.1f})" for k in kinds)
