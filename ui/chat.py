"""Chat / long text tab: streaming chat with a DeepSeek LLM, Stop, Regenerate, a context meter."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import Any

import gradio as gr

from core.config import AppConfig
from core.errors import PlaygroundError
from core.generation.documents import read_document
from core.generation.prompting import ChatRequest, ChatTurn
from core.serving.service import Service, ServiceEvent, TextDelta
from ui import conversations
from ui.controls import draw_seed, is_metrics, model_picker, sampling_controls, text_of, to_params
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


def split_last_turn(history: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """(the conversation before the last user message, that message's text), or (history, None) if none."""
    last_user = max((i for i, m in enumerate(history) if m["role"] == "user"), default=None)
    if last_user is None:
        return history, None
    return history[:last_user], text_of(history[last_user]["content"])


def to_turns(history: list[dict[str, Any]]) -> tuple[ChatTurn, ...]:
    """Chatbot messages -> model turns (metric lines dropped, content flattened)."""
    return tuple(ChatTurn(m["role"], text_of(m["content"])) for m in history
                 if m["role"] in ("user", "assistant") and not is_metrics(m))


def build(service: Service, cfg: AppConfig) -> None:
    """The tab's layout and wiring; call inside a gr.Tab."""
    registry = service.registry
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(elem_id="chat-history", height=460, label="Conversation", buttons=["copy"],
                                 editable="user", reasoning_tags=[THINK_TAGS])
            meter = gr.Markdown(EMPTY_METER, elem_id="chat-meter")
            with gr.Row(equal_height=True):
                # lines=1 with max_lines>1: Enter sends, Shift+Enter adds a line (lines>1 would send on Shift+Enter)
                message = gr.Textbox(placeholder="Message DeepSeek… (Enter to send, Shift+Enter for a new line, "
                                     "Esc to stop)", show_label=False, lines=1, max_lines=8, scale=5,
                                     elem_id="chat-input")
                send = gr.Button("Send", variant="primary", scale=1, min_width=72, elem_id="chat-send")
                stop = gr.Button("Stop", variant="stop", scale=1, min_width=72, visible=False, elem_id="chat-stop")
            with gr.Row():
                regenerate = gr.Button("Regenerate", size="sm", elem_id="chat-regenerate")
                resume = gr.Button("Continue", size="sm", elem_id="chat-continue")
                undo = gr.Button("Undo last turn", size="sm", elem_id="chat-undo")
                clear = gr.Button("Clear", size="sm", elem_id="chat-clear")
            gr.HTML("", js_on_load=ESC_STOPS, elem_id="chat-keys", padding=False)
        with gr.Column(scale=2):
            model, precision = model_picker(registry, "text", cfg.models.default_text, "chat")
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
        shown = [*history, {"role": "user", "content": text or "(document)"}, {"role": "assistant", "content": ""}]
        chat_request = ChatRequest(text or "", to_turns(history), sys_prompt or "", doc or "", answer_start)
        used_seed = draw_seed(seed)  # a new one per answer unless the user fixed it: Regenerate samples anew
        params = to_params(temperature, top_p, top_k, repetition, max_new, used_seed)
        notices = [f"seed {used_seed}"] if temperature > 0 else []
        def events() -> Iterator[ServiceEvent]:
            started = service.stream(chat_request, model_id, prec, params, session=session_key(request))
            return chain([TextDelta(answer_start)], started) if answer_start else started

        yield from stream_into_chat(events, history, shown, text, notices, meter_before=meter_now)

    # Gradio fills special arguments only before *rest, hence request (and edit) first
    def on_regenerate(request: gr.Request, history: list[dict[str, Any]], *rest: Any) -> Iterator[Any]:
        before, last = split_last_turn(history)
        if last is None:
            gr.Info("Nothing to regenerate yet.")
            return
        yield from on_send(last, before, *rest, request)

    def on_continue(request: gr.Request, history: list[dict[str, Any]], *rest: Any) -> Iterator[Any]:
        before, last = split_last_turn(history)
        answer = "".join(text_of(m["content"]) for m in history[len(before) + 1:] if not is_metrics(m))
        if last is None or not answer:
            gr.Info("No answer to continue yet.")
            return
        yield from on_send(last, before, *rest, request, answer_start=answer)

    def on_edit(request: gr.Request, edit: gr.EditData, history: list[dict[str, Any]], *rest: Any) -> Iterator[Any]:
        index = edit.index[0] if isinstance(edit.index, (list, tuple)) else edit.index
        yield from on_send(text_of(edit.value), history[:index], *rest, request)

    def on_undo(history: list[dict[str, Any]]) -> tuple[Any, Any]:
        before, last = split_last_turn(history)
        return (before, last) if last is not None else (gr.skip(), gr.skip())

    def on_upload(path: str | None) -> str:
        try:
            return read_document(path, cfg.limits.max_document_bytes) if path else gr.skip()
        except PlaygroundError as exc:
            gr.Warning(str(exc), title="Not attached")
            return gr.skip()

    def on_stop(request: gr.Request) -> None:
        service.stop(session_key(request))

    inputs = [message, chatbot, meter, document, model, precision, system, *sampling.inputs]
    rest = inputs[2:]
    outputs = [chatbot, meter, message]
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
        panel.after(trigger(on_undo, chatbot, [chatbot, message], api_visibility="private", queue=False))
    panel.wire()
    stop.click(on_stop, None, None, api_visibility="private", queue=False)
    clear.click(panel.on_new, panel.store, [chatbot, meter, *panel.shown], api_visibility="private", queue=False)
    upload.upload(on_upload, upload, document, api_visibility="private")
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
             top_k: int = 50, repetition_penalty: float = 1.0, seed: int = 0) -> Iterator[str]:
        """Stream the answer to one message (the text so far at each step)."""
        prec = precision or service.registry.hardware.full_precision.value
        params = to_params(temperature, top_p, top_k, repetition_penalty, max_new_tokens, seed)
        request = ChatRequest(message or "", (), system or "", document or "")
        yield from stream_text(lambda: service.stream(request, model, prec, params))

    gr.api(chat, api_name="chat", concurrency_limit=None)
