"""The shared handler loop turns Service events into what the chat shows (no browser)."""

from __future__ import annotations

from core.generation.stream import GenerationStats
from core.serving.service import ContextMeter, Finished, Loading, TextDelta
from ui.streaming import answer_parts


def test_loading_shows_its_stage_and_time_in_the_meter_and_its_own_line_in_the_metrics():
    stats = GenerationStats(5, 2, 0.05, 0.1, "cpu", "fp32", False)
    events = [Loading("Loading m as fp32", 0.5), Loading("Loading m as fp32", 19.6, done=True),
              ContextMeter("Context 5 / 4,096 tokens.", 5, 4096), TextDelta("Hi"), Finished(stats, "transformers")]
    parts = list(answer_parts(events))
    assert parts[0][1] == "Loading m as fp32… 0 s"
    assert parts[2][1] == "Context 5 / 4,096 tokens."
    metrics = parts[-1][2]
    assert metrics.startswith("0.05 s to first token") and "model loaded in 19.6 s" in metrics
