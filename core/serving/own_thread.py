"""Heavy torch work of a request on a short-lived thread of its own, never on the caller's (long-lived) thread.

A thread that runs a parallel torch op keeps an OpenMP worker pool for as long as it lives. A front end's request
threads live for the whole server (Gradio's and the API's thread pools), so one comparison or caption batch run on
one would leave a second pool beside the batcher's. Once a process holds more pool threads than cores, libgomp stops
spin-waiting between ops and every op of every later answer pays a wake-up: at deepseek-coder-1.3b's width on 2
cores, decode ran at 15 tok/s instead of 19 (bench/threads.py). Work started here ends with its thread, and so does
its pool.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from core.quant.stages import start_on_own_thread

T = TypeVar("T")
_POLL_S = 0.1  # how often a producer blocked on a full hand-over checks whether its consumer left


def call_on_own_thread(work: Callable[[], T], name: str) -> T:
    """work() on a new thread (this context copied, so progress callbacks still reach their request), waited for
    here; its exception is raised here."""
    return start_on_own_thread(work, name).result()


def iterate_on_own_thread(make: Callable[[], Iterator[T]], name: str) -> Iterator[T]:
    """The items of make(), produced on a new thread and handed over one at a time (the producer runs at most one
    item ahead). Closing this iterator closes the producer's iterator at its next item; its exception is raised here."""
    handover: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=1)
    left = threading.Event()

    def produce() -> None:
        items: Iterator[T] | None = None
        try:
            items = make()
            for item in items:
                if not _hand(handover, ("item", item), left):
                    return
            _hand(handover, ("end", None), left)
        except BaseException as exc:  # handed to the consumer
            _hand(handover, ("error", exc), left)
        finally:
            getattr(items, "close", lambda: None)()

    produced = start_on_own_thread(produce, name)
    try:
        while True:
            kind, value = handover.get()
            if kind == "end":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        left.set()
        produced.result()  # the producer has closed its iterator


def _hand(handover: queue.Queue[tuple[str, object]], message: tuple[str, object], left: threading.Event) -> bool:
    """Put message for the consumer; False when it left first."""
    while not left.is_set():
        try:
            handover.put(message, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False
