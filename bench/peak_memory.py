"""Peak memory over a block of code: CUDA's allocator peak on a GPU, else the process RSS sampled every 20 ms."""

from __future__ import annotations

import threading
from types import TracebackType

import psutil
import torch


class PeakMemory:
    """`with PeakMemory() as peak: ...` then `peak.bytes` (and `peak.kind`, what was measured)."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.bytes = 0
        self.kind = "CUDA allocated" if torch.cuda.is_available() else "process RSS"
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        process = psutil.Process()
        while True:
            self.bytes = max(self.bytes, process.memory_info().rss)
            if self._done.wait(self.interval_s):
                return

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        if torch.cuda.is_available():
            self.bytes = int(torch.cuda.max_memory_allocated())
            return
        self._done.set()
        if self._thread is not None:
            self._thread.join()
