"""Stage names of long loads (GPTQ calibration), seen by the request waiting on the load."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


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
