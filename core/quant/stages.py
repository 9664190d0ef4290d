"""Stage names of long loads (GPTQ calibration), seen by the request waiting on the load."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
LOAD_TICK_S = 0.5  # how often a request waiting on a load hears how far it got


@dataclass
class StageBoard:
    """What the load running under watching() is doing now; read by the waiting thread."""

    current: str

    def watching(self, work: Callable[[], T]) -> T:
        """Run work with report_stage() writing to this board."""
        token = _BOARD.set(self)
        try:
            return work()
        finally:
            _BOARD.reset(token)


_BOARD: ContextVar[StageBoard | None] = ContextVar("stage_board", default=None)


def report_stage(name: str) -> None:
    """Name the stage a long load has reached (a no-op when no request watches it)."""
    board = _BOARD.get()
    if board is not None:
        board.current = name


def start_on_own_thread(work: Callable[[], T], name: str) -> Future[T]:
    """work() started on a new daemon thread (this context copied, so report_stage and progress callbacks reach
    their request); its result, or its exception, arrives in the Future."""
    done: Future[T] = Future()

    def run() -> None:
        try:
            done.set_result(work())
        except BaseException as exc:  # handed to whoever waits on the Future
            done.set_exception(exc)

    threading.Thread(target=contextvars.copy_context().run, args=(run,), name=name, daemon=True).start()
    return done


class WatchedLoad(Generic[T]):
    """work() started on a short-lived thread of its own (a waiter that leaves, e.g. on Stop, leaves it running)
    with report_stage() inside it writing to .board; the waiter follows it through ticks(), then takes result()."""

    def __init__(self, work: Callable[[], T], name: str, stage: str = "") -> None:
        self.board = StageBoard(stage)
        self.started = time.perf_counter()
        self._done = start_on_own_thread(lambda: self.board.watching(work), name)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    def ticks(self, every_s: float = LOAD_TICK_S) -> Iterator[tuple[str, float]]:
        """(stage now, seconds since the start) every every_s while the work runs."""
        while not _finished_within(self._done, every_s):
            yield self.board.current, self.elapsed_s

    def result(self) -> T:
        """The work's result, or its exception raised here (waits if it still runs)."""
        return self._done.result()


def _finished_within(future: Future[T], seconds: float) -> bool:
    try:
        future.exception(timeout=seconds)
    except TimeoutError:
        return False
    return True
