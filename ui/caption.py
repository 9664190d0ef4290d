"""Caption tab: an image, a caption streamed in short or detailed style, then questions about that image."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from functools import partial
from typing import Any

import gradio as gr

from core.config import AppConfig
from core.errors import BadSettingError, PlaygroundError
from core.generation.images import load_image
from core.generation.sampling import SamplingParams
from core.generation.vision import STYLE_PROMPTS, AttachedImage, VisionRequest
from core.paths import ASSETS
from core.serving.request_log import RequestRecord, log_refused
from core.serving.service import Notice, Service, ServiceEvent
from ui import caption_batch
from ui.access import client_of
from ui.chat_turns import to_turns
from ui.controls import model_picker, sampling_controls, to_params
from ui.streaming import stream_into_chat, stream_text

EXAMPLES = sorted((ASSETS / "images").glob("*.png"))


def image_input(**kwargs: Any) -> gr.Image:
    """A gr.Image whose handler gets the upload's path unopened: core.generation.images checks it before decoding.

    gr.Image's own preprocess PIL-opens the file first, so a decompression bomb or a non-image would fail
    there with a generic error. (A subclass would do the same, but gradio writes a .pyi next to any
    component subclass at import time.)
    """
    image = gr.Image(type="filepath", **kwargs)
    image.preprocess = partial(_path_of_upload, image)  # type: ignore[method-assign]
    return image


def _path_of_upload(image: gr.Image, payload: Any) -> str | None:
    if payload is None or getattr(payload, "path", None) is None:
        return gr.Image.preprocess(image, payload)  # data: URLs, None
    return str(payload.path)


def caption_events(service: Service, image_path: str | None, question: str, style: str,
                   history: list[dict[str, Any]], model_id: str, precision: str, params: SamplingParams,
                   session: str | None = None, client: str | None = None,
                   attach: str | None = None) -> Iterator[ServiceEvent]:
    """Check the images now (a bad one raises before anything is shown); their notices come first, then the answer.

    `attach` is an image the new follow-up brings; those of earlier follow-ups are read back from `history`.
    """
    turns = to_turns(history)
    later = [*attachments_of(history), *([(sum(t.role == "user" for t in turns), attach)] if attach else [])]
    try:
        if attach and not turns:
            raise BadSettingError("Attach an image to a follow-up question; the first question is about the image "
                                  "above.")
        prepared = load_image(image_path, service.limits)
        extra = [(turn, load_image(path, service.limits)) for turn, path in later]
    except PlaygroundError as exc:
        log_refused(RequestRecord("/caption", model_id, precision), exc)
        raise
    request = VisionRequest(prepared.image, question or "", style, turns,  # type: ignore[arg-type]
                            attached=tuple(AttachedImage(turn, image.image) for turn, image in extra))
    events = service.stream(request, model_id, precision, params, session=session, client=client)
    notices = [*prepared.notices, *(text for _, image in extra for text in image.notices)]
    return itertools.chain((Notice(text) for text in notices), events)


def attachments_of(history: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(user turn, image path) of each image a follow-up attached; the first user turn's image is the main one."""
    users = [m for m in history if m["role"] == "user"]
    return [(turn, path) for turn, message in enumerate(users) if turn > 0 for path in _paths_in(message["content"])]


def _paths_in(content: Any) -> list[str]:
    """File paths in a chatbot message as it comes back from the browser ({"path"} or {"type": "file"} parts)."""
    parts = content if isinstance(content, (list, tuple)) else [content]
    found = []
    for part in parts:
        if isinstance(part, dict):
            path = part.get("path") or (part.get("file") or {}).get("path")
            if path:
                found.append(str(path))
        elif getattr(part, "path", None) or getattr(getattr(part, "file", None), "path", None):
            found.append(str(getattr(part, "path", None) or part.file.path))
    return found


def build(service: Service, cfg: AppConfig) -> None:
    """The tab's layout and wiring; call inside a gr.Tab."""
    registry = service.registry
    with gr.Row():
        with gr.Column(scale=2):
            image = image_input(label="Image (upload, paste or drop)", sources=["upload", "clipboard"],
                                height=320, elem_id="caption-image")
            if EXAMPLES:
                gr.Examples([[str(p)] for p in EXAMPLES], inputs=image, label="Examples")
            style = gr.Radio(list(STYLE_PROMPTS), value="short", label="Caption style", elem_id="caption-style")
            run = gr.Button("Caption", variant="primary", elem_id="caption-run")
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(elem_id="caption-history", height=420, label="About this image", buttons=["copy"])
            meter = gr.Markdown("Context: nothing sent yet.", elem_id="caption-meter")
            with gr.Row():
                question = gr.Textbox(placeholder="Ask about the image… (Enter to send)", show_label=False,
                                      scale=5, elem_id="caption-question")
                ask = gr.Button("Ask", scale=1, elem_id="caption-ask")
            attach = image_input(label="Attach another image to your next question (optional)",
                                 sources=["upload", "clipboard"], height=140, elem_id="caption-attach")
            with gr.Row():
                stop = gr.Button("Stop", variant="stop", elem_id="caption-stop")
                clear = gr.Button("Clear", elem_id="caption-clear")
        with gr.Column(scale=2):
            model, precision = model_picker(registry, "vision", cfg.models.default_vision, "caption",
                                            service.remotes)
            with gr.Accordion("Sampling", open=False):
                sampling = sampling_controls(cfg, "caption", max_new_tokens=64, temperature=0.0,
                                             repetition_penalty=1.0)

    def on_ask(path: str | None, text: str, history: list[dict[str, Any]], meter_now: str, chosen_style: str,
               model_id: str, prec: str, attached: str | None, temperature: float, top_p: float, top_k: int,
               repetition: float, max_new: int, seed: float, request: gr.Request) -> Iterator[Any]:
        prompt = (text or "").strip() or STYLE_PROMPTS.get(chosen_style, "")
        image_now = path if not history else attached
        user = {"role": "user", "content": [{"path": image_now}, prompt] if image_now else prompt}
        shown = [*history, user, {"role": "assistant", "content": ""}]
        sampling = (temperature, top_p, top_k, repetition, max_new, seed)
        yield from stream_into_chat(lambda: caption_events(service, path, text, chosen_style, history, model_id,
                                                           prec, to_params(*sampling), session_key(request),
                                                           client_of(request), attached),
                                    history, shown, text, strip=True, meter_before=meter_now,
                                    updates_per_s=cfg.server.stream_updates_per_s)

    def on_stop(request: gr.Request) -> None:
        service.stop(session_key(request))

    inputs = [image, question, chatbot, meter, style, model, precision, attach, *sampling.inputs]
    outputs = [chatbot, meter, question]
    run.click(lambda: ([], "", None), None, [chatbot, question, attach], api_visibility="private").then(
        on_ask, inputs, outputs, api_visibility="private", concurrency_limit=None)
    for trigger in (ask.click, question.submit):
        trigger(on_ask, inputs, outputs, api_visibility="private", concurrency_limit=None).then(
            _clear_sent_attachment, [chatbot, attach], attach, api_visibility="private")
    stop.click(on_stop, None, None, api_visibility="private", queue=False)
    reset = ([], "Context: nothing sent yet.", "")
    clear.click(lambda: reset, None, [chatbot, meter, question], api_visibility="private")
    image.change(lambda: reset, None, [chatbot, meter, question], api_visibility="private")  # a new image, a new chat
    caption_batch.build(service, model, precision, style, sampling)
    build_api(service, cfg)
    caption_batch.build_api(service, cfg)


def _clear_sent_attachment(history: list[dict[str, Any]], attached: str | None) -> Any:
    """Empty the attach box once its image is in the conversation; keep it when the question was refused."""
    users = [m for m in history if m["role"] == "user"]
    return None if attached and len(users) > 1 and _paths_in(users[-1]["content"]) else gr.skip()


def session_key(request: gr.Request) -> str:
    """The Stop key of this tab in this browser session."""
    return f"caption:{request.session_hash or 'api'}"


def build_api(service: Service, cfg: AppConfig) -> None:
    """/caption: upload an image (gradio_client.handle_file), stream the caption or the answer to a question."""

    def caption(image: str | None, question: str = "", style: str = "short", model: str = cfg.models.default_vision,
                precision: str = "", max_new_tokens: int = 64, temperature: float = 0.0, top_p: float = 0.95,
                top_k: int = 50, repetition_penalty: float = 1.0, seed: int = 0,
                request: gr.Request | None = None) -> Iterator[str]:
        """Stream the caption (or the answer to `question`) for one image: the text so far at each step."""
        prec = precision or service.registry.hardware.full_precision.value
        sampling = (temperature, top_p, top_k, repetition_penalty, max_new_tokens, seed)
        yield from stream_text(lambda: caption_events(service, image, question, style, [], model, prec,
                                                      to_params(*sampling), client=client_of(request)),
                               strip=True, updates_per_s=cfg.server.stream_updates_per_s)

    with gr.Column(visible=False):
        fields = [image_input(label="image"), gr.Textbox("", label="question"),
                  gr.Textbox("short", label="style"), gr.Textbox(cfg.models.default_vision, label="model"),
                  gr.Textbox("", label="precision"), gr.Number(64, precision=0, label="max_new_tokens"),
                  gr.Number(0.0, label="temperature"), gr.Number(0.95, label="top_p"),
                  gr.Number(50, precision=0, label="top_k"), gr.Number(1.0, label="repetition_penalty"),
                  gr.Number(0, precision=0, label="seed")]
        result = gr.Textbox(label="caption")
        endpoint = gr.Button("caption")
    endpoint.click(caption, fields, result, api_name="caption", concurrency_limit=None)

