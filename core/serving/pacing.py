"""Pacing: a stream's text deltas merged so a front end sends at most N updates a second (the last always arrives).

Every token as its own HTTP update is what made streaming over HTTP slower than the model: the browser, /chat and
the /v1 SSE writer all send the answer through pace(). The first delta goes out at once (time to first token is
unchanged); later ones wait at most one token gap; meters, notices and the final event are never held back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator

from core.serving.service import ServiceEvent, TextDelta


def pace(events: Iterable[ServiceEvent], updates_per_s: float,
         clock: Callable[[], float] = time.monotonic) -> Iterator[ServiceEvent]:
    """The same events with consecutive TextDeltas merged: at most updates_per_s of them a second (<= 0: no limit).

    Closing this iterator closes `events` (which stops the model).
    """
    interval = 1.0 / updates_per_s if updates_per_s > 0 else 0.0
    pending: list[str] = []
    last = -math.inf
    try:
        for event in events:
            if not isinstance(event, TextDelta):
                if pending:
                    yield TextDelta("".join(pending))
                    pending.clear()
                yield event
                continue
            pending.append(event.text)
            now = clock()
            if now - last >= interval:
                last = now
                yield TextDelta("".join(pending))
                pending.clear()
        if pending:
            yield TextDelta("".join(pending))
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
