"""The one streaming loop of the generating tabs: Service events -> the chatbot, the context meter, the input box.

Text is paced (core.serving.pacing): at most `updates_per_s` updates a second reach the browser or /chat, each the
whole answer so far, and the final text always arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gradio as gr

from core.errors import PlaygroundError
from core.serving.events import ContextMeter, Finished, Loading, Notice, ServiceEvent, TextDelta
from core.serving.pacing import pace
from ui.errors import any_error, public_text

LOADING = "Loading the model…"
UPDATES_PER_S = 20.0  # ServerConfig.stream_updates_per_s
METRICS_BODY = "\u200b"  # a metrics line is all title; an empty body would be dropped by Chatbot(reasoning_tags=...)


def answer_parts(events: Iterable[ServiceEvent], notices: Iterable[str] = ()) -> Iterator[tuple[str, str, str | None]]:
    """(answer so far, context meter, metrics line at the end or None) for each event."""
    text, meter, notes = "", "", list(notices)
    for event in events:
        if isinstance(event, Loading):  # load time is shown apart, never as time to first token
            meter = f"{event.stage}… {event.elapsed_s:.0f} s" if not event.done else meter
            notes += [f"model loaded in {event.elapsed_s:.1f} s"] if event.done else []
        elif isinstance(event, ContextMeter):
            meter = event.summary
        elif isinstance(event, Notice):
            notes.append(event.text)
        elif isinstance(event, TextDelta):
            text += event.text
        elif isinstance(event, Finished):
            yield text, meter, " · ".join([event.stats.summary(), event.backend, *notes])
            continue
        yield text, meter, None


def stream_into_chat(open_events: Callable[[], Iterable[ServiceEvent]], history: list[dict[str, Any]],
                     shown: list[dict[str, Any]], typed: str, notices: Iterable[str] = (),
                     strip: bool = False, updates_per_s: float = UPDATES_PER_S,
                     meter_before: str | None = None) -> Iterator[Any]:
    """Yield (chatbot, meter, input box) while the answer streams into shown[-1].

    On a PlaygroundError a toast says why; the conversation goes back to `history`, the meter to `meter_before` and
    the typed text back into the box. No gr.Error: it would paint an error overlay over chat, meter and input.
    Any other error (a bug) gives the text back too, then a logged reference.
    """
    try:
        events = open_events()  # validation errors are raised here, before anything is shown
        yield shown, LOADING, gr.Textbox(value="", interactive=False)
        for partial, meter, metrics in answer_parts(pace(events, updates_per_s), notices):
            shown[-1] = {"role": "assistant", "content": partial.lstrip() if strip else partial}
            if metrics:
                shown.append({"role": "assistant", "content": METRICS_BODY,
                              "metadata": {"title": metrics, "status": "done"}})
            yield shown, meter, gr.skip()
    except PlaygroundError as exc:
        gr.Warning(public_text(str(exc)), title="Not sent")
        yield history, gr.skip() if meter_before is None else meter_before, gr.Textbox(value=typed, interactive=True)
        return
    except Exception as exc:  # noqa: BLE001 - a bug too must give the text back and re-enable the box
        yield history, gr.skip(), gr.Textbox(value=typed, interactive=True)
        raise any_error(exc) from None
    yield gr.skip(), gr.skip(), gr.Textbox(interactive=True)


def stream_text(open_events: Callable[[], Iterable[ServiceEvent]], strip: bool = False,
                updates_per_s: float = UPDATES_PER_S) -> Iterator[str]:
    """The answer so far at each (paced) step, for the plain API endpoints; errors become gr.Error."""
    try:
        for partial, _meter, _metrics in answer_parts(pace(open_events(), updates_per_s)):
            yield partial.lstrip() if strip else partial
    except Exception as exc:  # noqa: BLE001 - a readable message, never a bare "Error"
        raise any_error(exc) from None
