"""The one streaming loop of the generating tabs: Service events -> the chatbot, the context meter, the input box."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gradio as gr

from core.serving.service import ContextMeter, Finished, Notice, ServiceEvent, TextDelta
from ui.errors import any_error

LOADING = "Loading the model…"


def answer_parts(events: Iterable[ServiceEvent], notices: Iterable[str] = ()) -> Iterator[tuple[str, str, str | None]]:
    """(answer so far, context meter, metrics line at the end or None) for each event."""
    text, meter, notes = "", "", list(notices)
    for event in events:
        if isinstance(event, ContextMeter):
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
                     strip: bool = False) -> Iterator[Any]:
    """Yield (chatbot, meter, input box) while the answer streams into shown[-1].

    On any error the conversation goes back to `history` and the typed text back into the box: no lost work.
    """
    try:
        events = open_events()  # validation errors are raised here, before anything is shown
        yield shown, LOADING, gr.Textbox(value="", interactive=False)
        for partial, meter, metrics in answer_parts(events, notices):
            shown[-1] = {"role": "assistant", "content": partial.lstrip() if strip else partial}
            if metrics:
                shown.append({"role": "assistant", "content": "", "metadata": {"title": metrics}})
            yield shown, meter, gr.skip()
    except Exception as exc:  # noqa: BLE001 - a bug too must give the text back and re-enable the box
        yield history, gr.skip(), gr.Textbox(value=typed, interactive=True)
        raise any_error(exc) from None
    yield gr.skip(), gr.skip(), gr.Textbox(interactive=True)


def stream_text(open_events: Callable[[], Iterable[ServiceEvent]], strip: bool = False) -> Iterator[str]:
    """The answer so far at each step, for the plain API endpoints; errors become gr.Error."""
    try:
        for partial, _meter, _metrics in answer_parts(open_events()):
            yield partial.lstrip() if strip else partial
    except Exception as exc:  # noqa: BLE001 - a readable message, never a bare "Error"
        raise any_error(exc) from None
