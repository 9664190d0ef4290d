"""Freed native memory goes back to the OS: the soak's RSS drift (issue #16) must not come back.

Each case runs in a fresh process (its own malloc arenas): 16 threads, as gradio's workers, each hold 8 MB of
64 KB blocks at the same moment, free them and keep one block that pins the top of their arena, three rounds.
"""

from __future__ import annotations

import os
import subprocess
import sys

from core.config import AppConfig
from core.space.config import ROOT

CHURN = """
import sys, threading, time
import psutil
from core.models.native_memory import release_native_memory
arena_max, trim_s = int(sys.argv[1]), float(sys.argv[2])
trimmer = release_native_memory(arena_max, trim_s)
proc, pins, threads = psutil.Process(), [], 16
gate = threading.Barrier(threads)

def work():
    blocks = [bytearray(64 * 1024) for _ in range(128)]  # 8 MB from this thread's arena, under the mmap threshold
    gate.wait()  # all 16 threads hold theirs at once, as under a burst of requests
    pins.append(bytearray(64 * 1024))  # allocated last: the arena's top cannot shrink
    del blocks

base = proc.memory_info().rss
for _ in range(3):
    workers = [threading.Thread(target=work) for _ in range(threads)]
    [w.start() for w in workers]
    [w.join() for w in workers]
time.sleep(max(3 * trim_s, 0.2))  # a few trim periods
print((proc.memory_info().rss - base) / 2**20)
"""


def retained_mb(arena_max: int, trim_s: float) -> float:
    out = subprocess.run([sys.executable, "-c", CHURN, str(arena_max), str(trim_s)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    return float(out.stdout.strip())


def test_with_the_servers_settings_a_burst_of_freed_memory_is_given_back():
    server = AppConfig().server
    assert server.malloc_arena_max > 0 and server.malloc_trim_s > 0  # on by default
    kept = retained_mb(server.malloc_arena_max, 0.1)  # the server's arena cap, trimming 100x more often than it does
    assert kept < 16, f"{kept:.0f} MB of 3 x 128 MB freed stayed resident"


def test_without_them_the_same_burst_stays_resident():
    """The control: glibc alone keeps most of the freed burst, so the test above can fail."""
    assert retained_mb(0, 0) > 48


def test_the_app_sends_arrows_allocations_to_malloc_where_the_trimmer_reaches_them():
    """pandas 3 strings (gradio's tables) and `datasets` allocate through Arrow; its own allocator keeps freed pages."""
    probe = ("import app, pyarrow, pandas\n"
             "pandas.DataFrame({'precision': ['fp32', 'int8'] * 1000}).astype(str)\n"  # an Arrow-backed string column
             "print(pyarrow.default_memory_pool().backend_name, pyarrow.total_allocated_bytes() >= 0)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=180,
                         check=True, env={k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"})
    assert out.stdout.split() == ["system", "True"], out.stdout + out.stderr[-2000:]
