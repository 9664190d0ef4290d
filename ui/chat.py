"""Chat / long text tab: streaming chat with a DeepSeek LLM, Stop, Regenerate, a context meter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import gradio as gr

from core.cancellation import StopBook
from core.config import AppConfig
from core.documents import read_document
from core.errors import PlaygroundError
from core.gpu_chat import GpuChat
from core.prompting import ChatRequest, ChatTurn
from core.registry import ModelRegistry
from core.request_log import logged_request
from ui.controls import is_metrics, model_picker, sampling_controls, text_of, to_params
from ui.errors import user_error

TASKS = {
    "Summarise": "Summarise the document in a few sentences.",
    "Continue": "Continue the document in the same style.",
    "Answer from it": "Using only the document, answer: ",
}


def to_turns(history: list[dict[str, Any]]) -> tuple[ChatTurn, ...]:
    """Chatbot messages -> model turns (metric lines dropped, content flattened)."""
    return tuple(ChatTurn(m["role"], text_of(m["content"])) for m in history
                 if m["role"] in ("user", "assistant") and not is_metrics(m))


def answer(gpu: GpuChat, cfg: AppConfig, stops: StopBook, session: str, request: ChatRequest,
           model_id: str, precision: str, sampling: list[Any],
           endpoint: str = "/chat") -> Iterator[tuple[str, str, str | None]]:
    """Yield (answer so far, context meter, metrics line or None at the end); one log line per request."""
    event = stops.begin(session)
    try:
        with logged_request(endpoint, model_id, precision) as record:
            params = to_params(*sampling)
            params.check(cfg.limits.max_new_tokens)
            request.check_size(cfg.limits.max_prompt_chars)
            text, meter, notes = "", "", []
            for update in gpu.stream(event, model_id, precision, request, params):
                meter = update.meter if update.meter is not None else meter
                notes += [update.note] if update.note else []
                text += update.delta
                if update.stats is None:
                    yield text, meter, None
                else:
                    record.prompt_tokens, record.new_tokens = update.stats.prompt_tokens, update.stats.new_tokens
                    record.outcome = "stopped" if update.stats.stopped else "ok"
                    yield text, meter, " · ".join([update.stats.summary(), update.backend, *notes])
    finally:
        stops.finish(session, event)


def build(registry: ModelRegistry, cfg: AppConfig) -> None:
    """The tab's layout and wiring; call inside a gr.Tab."""
    stops = StopBook()
    gpu = GpuChat.for_this_machine(registry, cfg.limits)  # @spaces.GPU on ZeroGPU, in-process elsewhere
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
        yield shown, "Loading the model…", gr.Textbox(value="", interactive=False)
        chat_request = ChatRequest(text or "", to_turns(history), sys_prompt or "", doc or "")
        try:
            for partial, meter_text, metrics in answer(gpu, cfg, stops, request.session_hash or "api",
                                                       chat_request, model_id, prec,
                                                       [temperature, top_p, top_k, repetition, max_new, seed]):
                shown[-1] = {"role": "assistant", "content": partial}
                if metrics:
                    shown.append({"role": "assistant", "content": "", "metadata": {"title": metrics}})
                yield shown, meter_text, gr.skip()
        except PlaygroundError as exc:  # the user's text goes back into the box: no lost work
            yield history, gr.skip(), gr.Textbox(value=text, interactive=True)
            raise user_error(exc) from None
        yield gr.skip(), gr.skip(), gr.Textbox(interactive=True)

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
        stops.stop(request.session_hash or "api")

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
    build_api(registry, cfg, stops, gpu)


def build_api(registry: ModelRegistry, cfg: AppConfig, stops: StopBook, gpu: GpuChat) -> None:
    """/chat: a plain streaming endpoint for gradio_client and scripts."""

    def chat(message: str, system: str = "", document: str = "", model: str = cfg.models.default_text,
             precision: str = "", max_new_tokens: int = 256, temperature: float = 0.0, top_p: float = 0.95,
             top_k: int = 50, repetition_penalty: float = 1.0, seed: int = 0) -> Iterator[str]:
        """Stream the answer to one message (the text so far at each step)."""
        prec = precision or registry.hardware.full_precision.value
        sampling = [temperature, top_p, top_k, repetition_penalty, max_new_tokens, seed]
        try:
            request = ChatRequest(message or "", (), system or "", document or "")
            for partial, _meter, _metrics in answer(gpu, cfg, stops, f"api-{uuid.uuid4()}", request,
                                                    model, prec, sampling):
                yield partial
        except PlaygroundError as exc:
            raise user_error(exc) from None

    gr.api(chat, api_name="chat", concurrency_limit=None)
