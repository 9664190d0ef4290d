"""Chat / long text tab: streaming chat with a DeepSeek LLM, Stop, Regenerate, a context meter."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import Any

import gradio as gr

from core.config import AppConfig
from core.errors import PlaygroundError
from core.generation.documents import read_document
from core.generation.prompting import ChatRequest
from core.serving.service import ContextMeter, Finished, Notice, Service, ServiceEvent, TextDelta
from ui import conversations
from ui.access import client_of
from ui.chat_turns import document_chip, last_turn, pending_note, to_turns, turn_at
from ui.controls import draw_seed, model_picker, sampling_controls, text_of, to_params
from ui.errors import public_text
from ui.streaming import stream_into_chat, stream_text

TASKS = {
    "Summarise": "Summarise the document in a few sentences.",
    "Continue": "Continue the document in the same style.",
    "Answer from it": "Using only the document, answer: ",
}


EMPTY_METER = "Context: nothing sent yet."
THINK_TAGS = ("<think>", "</think>")  # DeepSeek-R1's reasoning: shown folded, never sent back as context
ESC_STOPS = """if (!window.__chatEscStops) { window.__chatEscStops = true;
  document.addEventListener('keydown', (e) => { if (e.key !== 'Escape') return;
    const stop = document.querySelector('#chat-stop'); if (stop && stop.offsetParent !== null) stop.click(); }); }"""


def build(service: Service, cfg: AppConfig) -> None:
    """The tab's layout and wiring; call inside a gr.Tab."""
    registry = service.registry
    with gr.Row():
        with gr.Column(scale=3):
            model, precision = model_picker(registry, "text", cfg.models.default_text, "chat", service.remotes,
                                            side_by_side=True)
            chatbot = gr.Chatbot(elem_id="chat-history", height=460, label="Conversation", buttons=["copy"],
                                 editable="user", reasoning_tags=[THINK_TAGS])
            meter = gr.Markdown(EMPTY_METER, elem_id="chat-meter")
            with gr.Row(equal_height=True):
                # lines=1 with max_lines>1: Enter sends, Shift+Enter adds a line (lines>1 would send on Shift+Enter)
                message = gr.Textbox(placeholder="Message DeepSeek… (Enter to send, Shift+Enter for a new line, "
                                     "Esc to stop)", show_label=False, lines=1, max_lines=8, scale=5,
                                     elem_id="chat-input")
                attach = gr.UploadButton("📎", file_types=[".txt", ".md"], scale=0, min_width=44, size="sm",
                                         elem_id="chat-attach")  # the paperclip: a document for the next message
                send = gr.Button("Send", variant="primary", scale=1, min_width=72, elem_id="chat-send")
                stop = gr.Button("Stop", variant="stop", scale=1, min_width=72, visible=False, elem_id="chat-stop")
            attached = gr.Markdown("", elem_id="chat-attached")
            with gr.Row():
                regenerate = gr.Button("Regenerate", size="sm", elem_id="chat-regenerate")
                resume = gr.Button("Continue", size="sm", elem_id="chat-continue")
                undo = gr.Button("Undo last turn", size="sm", elem_id="chat-undo")
                clear = gr.Button("Clear", size="sm", elem_id="chat-clear")
            gr.HTML("", js_on_load=ESC_STOPS, elem_id="chat-keys", padding=False)
        with gr.Column(scale=2):
            system = gr.Textbox(label="System prompt", lines=2, elem_id="chat-system",
                                placeholder="e.g. You are a concise assistant.")
            with gr.Accordion("Sampling", open=False):
                sampling = sampling_controls(cfg, "chat", seed=-1)
            with gr.Accordion("Long text: attach or paste a document", open=False):
                upload = gr.File(label="Attach .txt / .md", file_types=[".txt", ".md"], elem_id="chat-doc-file")
                document = gr.Textbox(label="Document", lines=6, max_lines=16, elem_id="chat-document")
                task_buttons = [gr.Button(name, size="sm") for name in TASKS]
            panel = conversations.Panel(chatbot, meter, EMPTY_METER)

    def on_send(text: str, history: list[dict[str, Any]], meter_now: str, doc: str, model_id: str, prec: str,
                sys_prompt: str, temperature: float, top_p: float, top_k: int, repetition: float, max_new: int,
                seed: float, request: gr.Request, *, answer_start: str = "") -> Iterator[Any]:
        doc = doc or ""
        chip = [document_chip(doc)] if doc.strip() else []  # the document goes with this message only
        shown = [*history, *chip, {"role": "user", "content": text or "(document)"},
                 {"role": "assistant", "content": ""}]
        chat_request = ChatRequest(text or "", to_turns(history), sys_prompt or "", doc, answer_start)
        finished: list[Finished] = []

        def events() -> Iterator[ServiceEvent]:
            used_seed = draw_seed(seed)  # a new one per answer unless the user fixed it: Regenerate samples anew
            params = to_params(temperature, top_p, top_k, repetition, max_new, used_seed)  # checked: a toast if bad
            started = service.stream(chat_request, model_id, prec, params, session=session_key(request),
                                     client=client_of(request))
            seed_note = [Notice(f"seed {params.seed}")] if params.temperature > 0 else []
            for event in chain(seed_note, [TextDelta(answer_start)], started):
                if isinstance(event, ContextMeter) and chip:
                    chip[0].update(document_chip(doc, event.document_tokens))
                finished.extend([event] if isinstance(event, Finished) else [])
                yield event

        for update in stream_into_chat(events, history, shown, text, meter_before=meter_now,
                                       updates_per_s=cfg.server.stream_updates_per_s):
            yield *update, gr.skip(), gr.skip()
        if finished and chip:  # sent: the next message goes without it
            yield gr.skip(), gr.skip(), gr.skip(), "", None

    # Gradio fills special arguments only before *rest, hence request (and edit) first
    def on_regenerate(request: gr.Request, history: list[dict[str, Any]], *rest: Any) -> Iterator[Any]:
        turn = last_turn(history)
        if turn is None:
            gr.Info("Nothing to regenerate yet.")
            return
        yield from on_send(turn.text, turn.before, rest[0], turn.document, *rest[2:], request)

    def on_continue(request: gr.Request, history: list[dict[str, Any]], *rest: Any) -> Iterator[Any]:
        turn = last_turn(history)
        if turn is None or not turn.answer:
            gr.Info("No answer to continue yet.")
            return
        yield from on_send(turn.text, turn.before, rest[0], turn.document, *rest[2:], request,
                           answer_start=turn.answer)

    def on_edit(request: gr.Request, edit: gr.EditData, history: list[dict[str, Any]], *rest: Any) -> Iterator[Any]:
        turn = turn_at(history, edit.index[0] if isinstance(edit.index, (list, tuple)) else edit.index,
                       text_of(edit.value))
        yield from on_send(turn.text, turn.before, rest[0], turn.document, *rest[2:], request)

    def on_undo(history: list[dict[str, Any]]) -> tuple[Any, Any, Any]:
        turn = last_turn(history)
        return (turn.before, turn.text, turn.document) if turn else (gr.skip(),) * 3

    def on_upload(path: str | None) -> str:
        try:
            return read_document(path, cfg.limits.max_document_bytes) if path else gr.skip()
        except PlaygroundError as exc:
            gr.Warning(public_text(str(exc)), title="Not attached")
            return gr.skip()

    def on_stop(request: gr.Request) -> None:
        service.stop(session_key(request))

    inputs = [message, chatbot, meter, document, model, precision, system, *sampling.inputs]
    rest = inputs[2:]
    outputs = [chatbot, meter, message, document, upload]
    events = [trigger(answering, None, [send, stop], queue=False, api_visibility="private").then(
        handler, handler_inputs, outputs, api_visibility=visibility, concurrency_limit=None)
        for trigger, handler, handler_inputs, visibility in (
            (send.click, on_send, inputs, "undocumented"),
            (message.submit, on_send, inputs, "private"),
            (regenerate.click, on_regenerate, [chatbot, *rest], "private"),
            (resume.click, on_continue, [chatbot, *rest], "private"),
            (chatbot.retry, on_regenerate, [chatbot, *rest], "private"),
            (chatbot.edit, on_edit, [chatbot, *rest], "private"))]
    for event in events:
        panel.after(event.then(idle, None, [send, stop], queue=False, api_visibility="private"))
    for trigger in (undo.click, chatbot.undo):
        panel.after(trigger(on_undo, chatbot, [chatbot, message, document], api_visibility="private", queue=False))
    panel.wire()
    stop.click(on_stop, None, None, api_visibility="private", queue=False)
    clear.click(panel.on_new, panel.store, [chatbot, meter, *panel.shown], api_visibility="private", queue=False).then(
        lambda: ("", None), None, [document, upload], api_visibility="private", queue=False)
    for source in (upload, attach):
        source.upload(on_upload, source, document, api_visibility="private")
    document.change(pending_note, document, attached, api_visibility="private", queue=False)
    for button, prompt in zip(task_buttons, TASKS.values(), strict=True):
        button.click(lambda p=prompt: p, None, message, api_visibility="private")
    build_api(service, cfg)


def answering() -> tuple[gr.Button, gr.Button]:
    """Send turns into Stop while an answer streams (built per call: a Button built in the layout would render)."""
    return gr.Button(visible=False), gr.Button(visible=True)


def idle() -> tuple[gr.Button, gr.Button]:
    return gr.Button(visible=True), gr.Button(visible=False)


def session_key(request: gr.Request) -> str:
    """The Stop key of this tab in this browser session."""
    return f"chat:{request.session_hash or 'api'}"


def build_api(service: Service, cfg: AppConfig) -> None:
    """/chat: a plain streaming endpoint for gradio_client and scripts (a disconnect stops the model)."""

    def chat(message: str, system: str = "", document: str = "", model: str = cfg.models.default_text,
             precision: str = "", max_new_tokens: int = 256, temperature: float = 0.0, top_p: float = 0.95,
             top_k: int = 50, repetition_penalty: float = 1.0, seed: int = 0,
             request: gr.Request | None = None) -> Iterator[str]:
        """Stream the answer to one message (the text so far at each step)."""
        prec = precision or service.registry.hardware.full_precision.value
        chat_request = ChatRequest(message or "", (), system or "", document or "")
        yield from stream_text(lambda: service.stream(chat_request, model, prec,
                                                      to_params(temperature, top_p, top_k, repetition_penalty,
                                                                max_new_tokens, seed), client=client_of(request)),
                               updates_per_s=cfg.server.stream_updates_per_s)

    gr.api(chat, api_name="chat", concurrency_limit=None)
