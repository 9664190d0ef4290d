"""Chat / long text tab: streaming chat with a DeepSeek LLM, Stop, Regenerate, a context meter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from core.config import AppConfig
from core.errors import PlaygroundError
from core.generation.documents import read_document
from core.generation.prompting import ChatRequest, ChatTurn
from core.serving.service import Service
from ui.access import client_of
from ui.controls import is_metrics, model_picker, sampling_controls, text_of, to_params
from ui.errors import user_error
from ui.streaming import stream_into_chat, stream_text

TASKS = {
    "Summarise": "Summarise the document in a few sentences.",
    "Continue": "Continue the document in the same style.",
    "Answer from it": "Using only the document, answer: ",
}


def to_turns(history: list[dict[str, Any]]) -> tuple[ChatTurn, ...]:
    """Chatbot messages -> model turns (metric lines dropped, content flattened)."""
    return tuple(ChatTurn(m["role"], text_of(m["content"])) for m in history
                 if m["role"] in ("user", "assistant") and not is_metrics(m))


def build(service: Service, cfg: AppConfig) -> None:
    """The tab's layout and wiring; call inside a gr.Tab."""
    registry = service.registry
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(elem_id="chat-history", height=460, label="Conversation", buttons=["copy"])
            meter = gr.Markdown("Context: nothing sent yet.", elem_id="chat-meter")
            with gr.Row():
                message = gr.Textbox(placeholder="Message DeepSeek… (Enter to send, Shift+Enter for a new line)",
                                     show_label=False, lines=2, scale=5, elem_id="chat-input")
                send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
            with gr.Row():
                stop = gr.Button("Stop", variant="stop", elem_id="chat-stop")
                regenerate = gr.Button("Regenerate", elem_id="chat-regenerate")
                clear = gr.Button("Clear", elem_id="chat-clear")
        with gr.Column(scale=2):
            model, precision = model_picker(registry, "text", cfg.models.default_text, "chat")
            system = gr.Textbox(label="System prompt", lines=2, elem_id="chat-system",
                                placeholder="e.g. You are a concise assistant.")
            with gr.Accordion("Sampling", open=False):
                sampling = sampling_controls(cfg, "chat")
            with gr.Accordion("Long text: attach or paste a document", open=False):
                upload = gr.File(label="Attach .txt / .md", file_types=[".txt", ".md"], elem_id="chat-doc-file")
                document = gr.Textbox(label="Document", lines=6, max_lines=16, elem_id="chat-document")
                task_buttons = [gr.Button(name, size="sm") for name in TASKS]

    def on_send(text: str, history: list[dict[str, Any]], doc: str, model_id: str, prec: str, sys_prompt: str,
                temperature: float, top_p: float, top_k: int, repetition: float, max_new: int, seed: float,
                request: gr.Request) -> Iterator[Any]:
        shown = [*history, {"role": "user", "content": text or "(document)"}, {"role": "assistant", "content": ""}]
        chat_request = ChatRequest(text or "", to_turns(history), sys_prompt or "", doc or "")
        sampling = (temperature, top_p, top_k, repetition, max_new, seed)
        yield from stream_into_chat(lambda: service.stream(chat_request, model_id, prec, to_params(*sampling),
                                                           session=session_key(request), client=client_of(request)),
                                    history, shown, text)

    def on_regenerate(history: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
        turns = [m for m in history if not is_metrics(m)]
        last_user = max((i for i, m in enumerate(turns) if m["role"] == "user"), default=None)
        if last_user is None:
            raise user_error("Nothing to regenerate yet.")
        return turns[:last_user], text_of(turns[last_user]["content"])

    def on_upload(path: str | None) -> str:
        try:
            return read_document(path, cfg.limits.max_document_bytes) if path else gr.skip()
        except PlaygroundError as exc:
            raise user_error(exc) from None

    def on_stop(request: gr.Request) -> None:
        service.stop(session_key(request))

    inputs = [message, chatbot, document, model, precision, system, *sampling.inputs]
    outputs = [chatbot, meter, message]
    for trigger in (send.click, message.submit):
        trigger(on_send, inputs, outputs, api_visibility="undocumented", concurrency_limit=None)
    regenerate.click(on_regenerate, chatbot, [chatbot, message], api_visibility="private").success(
        on_send, inputs, outputs, api_visibility="private", concurrency_limit=None)
    stop.click(on_stop, None, None, api_visibility="private", queue=False)
    clear.click(lambda: ([], "Context: nothing sent yet.", ""), None, [chatbot, meter, message],
                api_visibility="private")
    upload.upload(on_upload, upload, document, api_visibility="private")
    for button, prompt in zip(task_buttons, TASKS.values(), strict=True):
        button.click(lambda p=prompt: p, None, message, api_visibility="private")
    build_api(service, cfg)


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
        sampling = (temperature, top_p, top_k, repetition_penalty, max_new_tokens, seed)
        chat_request = ChatRequest(message or "", (), system or "", document or "")
        yield from stream_text(lambda: service.stream(chat_request, model, prec, to_params(*sampling),
                                                      client=client_of(request)))

    gr.api(chat, api_name="chat", concurrency_limit=None)
