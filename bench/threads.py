"""Calling measured work as a server calls it: from a thread that ends with the call.

A thread that runs a parallel torch op keeps an OpenMP worker pool for life. Once a process holds more pool threads
than cores, libgomp stops spin-waiting between ops and every op pays a wake-up. A live server runs no parallel op on
its request threads, and its loads run on short-lived threads, so its batcher thread holds the only pool. A bench
that loads or runs a model on its main thread gives the main thread a second pool and measures the app's batcher
slower than it serves (-22 % decode at real width in bench.gguf, measured when this module was written).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def on_fresh_thread(work: Callable[[], T]) -> T:
    """work() on a thread that ends with it, so that no OpenMP pool outlives the call; its exception re-raised."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            error.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
