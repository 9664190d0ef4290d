"""Bounded admission: running and waiting slots for one kind of work, and a cap per client on requests in flight.

A request that would wait beyond the bound is refused at once with BusyError ("server is busy"), before the
server's worker threads run out, so one client (or one kind of heavy work) can never starve the others.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import BusyError


class Admission:
    """At most max_running at once, max_waiting more queued; each client at most per_client of them."""

    def __init__(self, name: str, max_running: int, max_waiting: int, per_client: int) -> None:
        self.name, self.max_running, self.max_waiting, self.per_client = name, max_running, max_waiting, per_client
        self._slots = threading.Semaphore(max_running)
        self._lock = threading.Lock()
        self._clients: Counter[str] = Counter()
        self.running = 0
        self.waiting = 0

    @contextmanager
    def slot(self, client: str | None = None) -> Iterator[None]:
        """Hold a running slot for the block; BusyError at once when the queue or the client's share is full."""
        key = client or "anonymous"
        with self._lock:
            if self._clients[key] >= self.per_client:
                raise BusyError(f"You already have {self._clients[key]} {self.name} request(s) in progress; "
                                "wait for one to finish.")
            if self.running + self.waiting >= self.max_running + self.max_waiting:
                raise BusyError(f"The server is busy ({self.running} {self.name} request(s) running, "
                                f"{self.waiting} waiting). Try again in a moment.")
            self._clients[key] += 1
            self.waiting += 1
        try:
            self._slots.acquire()
            with self._lock:
                self.waiting -= 1
                self.running += 1
            try:
                yield
            finally:
                with self._lock:
                    self.running -= 1
                self._slots.release()
        finally:
            with self._lock:
                self._clients[key] -= 1
                if self._clients[key] <= 0:
                    del self._clients[key]
