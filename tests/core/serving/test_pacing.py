"""pace(): text deltas merged to at most N updates a second; the first and the last text are never held back."""

from __future__ import annotations

from core.generation.stream import GenerationStats
from core.serving.pacing import pace
from core.serving.service import ContextMeter, Finished, TextDelta

STATS = GenerationStats(3, 6, 0.1, 0.5, "cpu", "fp32", False)


class Clock:
    def __init__(self, times: list[float]) -> None:
        self.times = iter(times)

    def __call__(self) -> float:
        return next(self.times)


def test_deltas_within_one_interval_are_merged_and_the_rest_arrives_at_the_end():
    events = [ContextMeter("meter", 3, 100), *(TextDelta(t) for t in "abcdef"), Finished(STATS, "x")]
    clock = Clock([0.00, 0.01, 0.02, 0.06, 0.07, 0.08])  # one reading per delta
    out = list(pace(iter(events), 20, clock))  # at most one update per 50 ms
    assert out[0] == events[0] and out[-1] == events[-1]
    assert [e.text for e in out[1:-1]] == ["a", "bcd", "ef"]  # first at once, then >= 50 ms apart, then the rest


def test_no_limit_passes_every_event_through():
    events = [TextDelta("a"), TextDelta("b"), Finished(STATS, "x")]
    assert list(pace(iter(events), 0)) == events


def test_closing_the_paced_stream_closes_the_source():
    closed = []

    def source():
        try:
            while True:
                yield TextDelta("x")
        finally:
            closed.append(True)

    paced = pace(source(), 1000)
    next(paced)
    paced.close()
    assert closed == [True]
