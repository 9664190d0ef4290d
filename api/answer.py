"""One answer read from the Service for an API client: paced text pieces, stop strings, finish reason and usage.

Framework-free and synchronous: the routes call it from worker threads. open_answer() reads up to the first text
(or the end), so that every refusal the Service can raise (unknown model, memory budget, busy, too long) is known
before the HTTP status is sent.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

from api.requests import ChatCall
from api.responses import FinishReason, StopStrings, finish_reason_of, usage_of
from core.generation.stream import GenerationStats
from core.serving.pacing import pace
from core.serving.service import Finished, Service, ServiceEvent, TextDelta


class Answer:
    """The text pieces of one answer (iterate once), then finish_reason and usage."""

    def __init__(self, call: ChatCall, events: Iterator[ServiceEvent], head: list[ServiceEvent],
                 stop: threading.Event) -> None:
        self.call, self.stop = call, stop
        self._events, self._head = events, head
        self._stops = StopStrings(call.stop)
        self.stats: GenerationStats | None = None

    def pieces(self) -> Iterator[str]:
        """Text as it may be sent: a matched stop string ends the text and stops the model."""
        for event in itertools.chain(self._head, self._events):
            if isinstance(event, TextDelta):
                text = self._stops.feed(event.text)
                if text:
                    yield text
                if self._stops.hit:
                    self.stop.set()  # the model stops at its next step; its stats still arrive
            elif isinstance(event, Finished):
                self.stats = event.stats
        rest = self._stops.flush()
        if rest:
            yield rest

    @property
    def finish_reason(self) -> FinishReason:
        return finish_reason_of(self.stats, self.call.params.max_new_tokens, self._stops.hit)

    @property
    def usage(self) -> dict[str, int]:
        return usage_of(self.stats)

    def close(self) -> None:
        """Stop the model (a client that left) and release the request's batch row."""
        self.stop.set()
        self._events.close()  # type: ignore[attr-defined]


def open_answer(service: Service, call: ChatCall, precision: str, updates_per_s: float) -> Answer:
    """Validate and start the answer, reading its events up to the first text; PlaygroundErrors propagate."""
    stop = threading.Event()
    events = pace(service.stream(call.request, call.model, precision, call.params, stop=stop), updates_per_s)
    head: list[ServiceEvent] = []
    try:
        for event in events:
            head.append(event)
            if isinstance(event, TextDelta | Finished):
                break
    except BaseException:
        events.close()
        raise
    return Answer(call, events, head, stop)
