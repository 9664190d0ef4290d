"""Per-request Stop events, keyed by the user's session, so Stop reaches the running model."""

from __future__ import annotations

import threading


class StopBook:
    """One Event per session: begin() arms a fresh one, stop() sets it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}

    def begin(self, session: str, event: threading.Event | None = None) -> threading.Event:
        """Arm event (a new, unset one by default) for this session's next generation: a stale Stop must not kill it."""
        event = event or threading.Event()
        with self._lock:
            self._events[session] = event
        return event

    def stop(self, session: str) -> bool:
        """Set the session's event; False when nothing was running for it."""
        with self._lock:
            event = self._events.get(session)
        if event is None:
            return False
        event.set()
        return True

    def finish(self, session: str, event: threading.Event) -> None:
        """Forget the event once its generation ended (unless a newer one replaced it)."""
        with self._lock:
            if self._events.get(session) is event:
                del self._events[session]
