"""Give freed native memory back to the OS, so the server's RSS follows what it really holds.

Tensors, tokenizer buffers, decoded images and HTTP bodies are allocated by glibc malloc from the thread that
made them. With gradio's 40 worker threads glibc keeps up to 8 x cores arenas, and a freed block stays in its
arena (counted in RSS) until a later allocation in that arena reuses it; only the top of each arena is given
back. Measured on the soak (README "Benchmarks"): Python objects grew by 0.2 MB while RSS grew by tens of MB,
and one malloc_trim(0) gave back 138 MB. So the server caps the arenas and trims them now and then.
Elsewhere than glibc (macOS, musl) both are no-ops.

Apache Arrow (under pandas 3's strings, hence gradio's tables, and `datasets`) brings its own allocator, which
reserves 1 GiB at once and keeps freed pages by its own decay rules: in the soak that region alone grew by
25-35 MB after warm-up. The server routes Arrow to the system allocator, so one allocator holds everything and the
trimmer reaches all of it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from functools import cache

logger = logging.getLogger("playground.memory")
M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h


@cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim, libc.mallopt  # noqa: B018 - both must exist (glibc)
    except (OSError, AttributeError):
        return None
    return libc


def use_one_allocator() -> None:
    """Send Arrow's allocations to malloc (call before anything imports pyarrow; an operator's setting wins)."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def limit_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas at `count` (call before the worker threads start); False where not glibc."""
    libc = _glibc()
    return bool(libc and count > 0 and libc.mallopt(M_ARENA_MAX, count) == 1)


def trim() -> bool:
    """Give free pages of every arena back to the OS (malloc_trim(0)); True when some were returned."""
    libc = _glibc()
    return bool(libc and libc.malloc_trim(0))


class Trimmer:
    """A daemon thread that trims every `every_s` seconds until stop()."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="malloc-trim", daemon=True)

    def start(self) -> Trimmer:
        if self.every_s > 0 and _glibc() is not None:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            trim()


def release_native_memory(arena_max: int, trim_every_s: float) -> Trimmer:
    """The server's setting at start-up: cap the arenas, then trim on a timer (0 switches either off)."""
    capped = limit_arenas(arena_max)
    trimmer = Trimmer(trim_every_s).start()
    logger.debug("malloc arenas capped at %s: %s; trimming every %s s", arena_max, capped, trim_every_s)
    return trimmer
