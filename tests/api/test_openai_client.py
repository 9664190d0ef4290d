"""The /v1 API through the official `openai` client, against the running app (tests/conftest.py's app_url).

Answers are compared with the Service's own answer to the same request in this process: the API must add nothing
and lose nothing. Each kind of refusal must arrive as the SDK's own exception class.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time

import httpx
import openai
import pytest

from core.generation.prompting import ChatRequest
from core.generation.sampling import SamplingParams
from core.generation.vision import VisionRequest
from core.models.hardware import Precision
from core.models.loading import ModelKey
from core.serving.service import Service, TextDelta
from scripts.shapes import ShapeScene, draw_scene, parse_attributes
from tests.conftest import DENSE_MODEL, TEXT_MODEL, UI_CONFIG, VISION_MODEL

QUESTION = "What does the for statement do?"
SCENE = ShapeScene("triangle", "blue", "small", 2, None, "gradient")  # as tests/ui/test_caption_api.py




def service_answer(service: Service, request, model: str, max_tokens: int) -> str:
    params = SamplingParams(max_new_tokens=max_tokens, temperature=0, top_k=0, top_p=1.0)
    return "".join(e.text for e in service.stream(request, model, "fp32", params) if isinstance(e, TextDelta))


def ask(oai: openai.OpenAI, content, model: str = TEXT_MODEL, **kwargs):
    return oai.chat.completions.create(model=model, messages=[{"role": "user", "content": content}],
                                       temperature=0, **kwargs)


def test_models_lists_the_bundled_models_and_which_take_images(oai):
    models = {m.id: m for m in oai.models.list()}
    assert {TEXT_MODEL, DENSE_MODEL, VISION_MODEL} <= set(models)
    assert models[VISION_MODEL].input_modalities == ["text", "image"]
    assert models[TEXT_MODEL].input_modalities == ["text"] and "fp32" in models[TEXT_MODEL].precisions
    assert not any(m.startswith("deepseek-ai/") for m in models)  # offline: Hub ids cannot serve here
    assert oai.models.retrieve(TEXT_MODEL).id == TEXT_MODEL


def test_a_non_streamed_answer_is_the_services_answer_with_usage(oai, service):
    reply = ask(oai, QUESTION, max_tokens=16)
    assert reply.choices[0].message.content == service_answer(service, ChatRequest(QUESTION), TEXT_MODEL, 16)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 16 and reply.usage.prompt_tokens > 0


def test_a_streamed_answer_arrives_in_chunks_with_usage_last(oai, service):
    chunks = list(ask(oai, QUESTION, model=DENSE_MODEL, max_completion_tokens=24, stream=True,
                      stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == service_answer(service, ChatRequest(QUESTION), DENSE_MODEL, 24)
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 2
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 24


def test_a_stop_string_ends_the_answer_just_before_it(oai):
    full = ask(oai, QUESTION, max_tokens=24).choices[0].message.content
    word = full.split()[2]
    for stream in (False, True):
        reply = ask(oai, QUESTION, max_tokens=24, stop=[word], stream=stream)
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in reply if c.choices)
        else:
            text, reason = reply.choices[0].message.content, reply.choices[0].finish_reason
            assert reason == "stop"
        assert text == full[:full.index(word)]


def image_uri(scene: ShapeScene) -> str:
    import io

    buffer = io.BytesIO()
    draw_scene(scene, 128, 3).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_an_image_question_to_deepseek_vl_gets_the_services_caption(oai, service):
    content = [{"type": "text", "text": "Describe this image."},
               {"type": "image_url", "image_url": {"url": image_uri(SCENE)}}]
    reply = ask(oai, content, model=VISION_MODEL, max_tokens=40).choices[0].message.content
    image = draw_scene(SCENE, 128, 3).convert("RGB")
    assert reply == service_answer(service, VisionRequest(image, "Describe this image."), VISION_MODEL, 40)
    assert parse_attributes(reply) == SCENE.attributes("detailed")


def png_bomb() -> str:
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(png).decode()


def with_image(url: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": "Describe this image."},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


USER = [{"role": "user", "content": "hi"}]
BAD_REQUESTS = [  # (body fields, status, words in the message)
    ({"messages": []}, 400, "non-empty list"),
    ({"messages": "hi"}, 400, "non-empty list"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, 400, "unknown role"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}, 400,
     "unsupported content part"),
    ({"messages": USER, "max_tokens": 0}, 400, "max_tokens must be between 1"),
    ({"messages": USER, "max_tokens": -5}, 400, "max_tokens must be between 1"),
    ({"messages": USER, "max_tokens": 10**6}, 400, "max_tokens must be between 1"),
    ({"messages": USER, "temperature": -1}, 400, "temperature must be a number"),
    ({"messages": USER, "n": 2}, 400, "n=1"),
    ({"messages": USER, "frequency_penalty": 0.5}, 400, "repetition_penalty"),
    ({"messages": [{"role": "user", "content": "x" * 1_000_000}]}, 413, "characters"),
    ({"model": VISION_MODEL, "messages": with_image("https://example.com/cat.png")}, 400, "not fetched"),
    ({"model": VISION_MODEL, "messages": with_image("data:image/png;base64," + base64.b64encode(b"text").decode())},
     400, "not an image"),
    ({"model": VISION_MODEL, "messages": with_image(png_bomb())}, 400, "pixels"),
    ({"model": VISION_MODEL, "messages": with_image("data:image/png;base64," + "A" * 28_000_000)}, 413, "MB"),
    ({"messages": with_image(image_uri(SCENE))}, 400, "cannot see images"),
]


@pytest.mark.parametrize("fields,status,words", BAD_REQUESTS, ids=[f"{b[1]}-{b[2]}" for b in BAD_REQUESTS])
def test_bad_input_is_an_openai_error_and_the_server_keeps_serving(oai, fields, status, words):
    body = {"model": TEXT_MODEL, "max_tokens": 4, **fields}
    kind = openai.BadRequestError if status == 400 else openai.APIStatusError
    with pytest.raises(kind) as caught:
        oai.chat.completions.create(**body)
    assert caught.value.status_code == status and words in caught.value.message
    assert caught.value.body["message"] and "Traceback" not in caught.value.response.text
    assert ask(oai, "Hello", max_tokens=4).choices[0].message.content


@pytest.mark.parametrize("body,words", [
    (b'{"model": "x", "messages": [', "not valid JSON"),
    (b'[1, 2]', "JSON object"),
    (b'{"model": "bundled/deepseek-v3-tiny", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
     "temperature must be a number"),  # Python's json reads NaN; the SDK refuses to send it
])
def test_malformed_json_is_a_400_with_openais_error_object(app_url, body, words):
    reply = httpx.post(app_url + "v1/chat/completions", content=body, timeout=30)
    assert reply.status_code == 400 and words in reply.json()["error"]["message"]


def test_an_unknown_model_or_route_is_not_found(oai, app_url):
    with pytest.raises(openai.NotFoundError, match="Unknown model 'nope/model'"):
        ask(oai, "hi", model="nope/model", max_tokens=4)
    with pytest.raises(openai.NotFoundError, match="not reachable"):  # a Hub id, offline
        ask(oai, "hi", model="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", max_tokens=4)
    assert httpx.get(app_url + "v1/embeddings", timeout=30).json()["error"]["code"] == "unknown_url"


def test_a_busy_model_is_a_429_with_retry_after(oai, registry, monkeypatch):
    ask(oai, "hi", max_tokens=2)  # resident
    monkeypatch.setattr(registry.batcher(ModelKey(TEXT_MODEL, Precision("fp32"))), "max_waiting", 0)
    with pytest.raises(openai.RateLimitError, match="busy") as caught:
        ask(oai, "hi", max_tokens=4)
    assert int(caught.value.response.headers["retry-after"]) >= 1


def test_a_model_over_the_memory_budget_is_a_503(oai, registry, monkeypatch):
    monkeypatch.setattr(registry, "memory_budget_bytes", 1)
    with contextlib.ExitStack() as held:  # the resident models are kept: nothing to evict, so it is refused
        for loaded in registry.resident():
            held.enter_context(registry.hold(loaded.key))
        with pytest.raises(openai.InternalServerError) as caught:
            oai.chat.completions.create(model=DENSE_MODEL, messages=USER, max_tokens=4,
                                        extra_body={"precision": "bf16"})
    assert caught.value.status_code == 503 and "memory" in caught.value.message.lower()


def test_a_wrong_or_missing_api_key_is_a_401(app_url, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_API_KEY", "sekret")
    for key in ("wrong", ""):
        client = openai.OpenAI(base_url=app_url + "v1", api_key=key or "x", max_retries=0,
                               default_headers={} if key else {"Authorization": ""})
        with pytest.raises(openai.AuthenticationError, match="API key"):
            client.models.list()
    good = openai.OpenAI(base_url=app_url + "v1", api_key="sekret", max_retries=0)
    assert good.models.list().data


def test_a_client_that_disconnects_mid_stream_frees_its_batch_row(oai, registry):
    key = ModelKey(TEXT_MODEL, Precision("fp32"))
    stream = oai.chat.completions.create(model=TEXT_MODEL, messages=[{"role": "user", "content": QUESTION}],
                                         max_tokens=2000, temperature=1.0, seed=3, stream=True)
    received = [c for _, c in zip(range(4), stream, strict=False)]
    assert len(received) == 4 and registry.running(key) == 1
    stream.close()
    deadline = time.monotonic() + 10
    while registry.running(key) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert registry.running(key) == 0 and registry.batcher(key).active() == 0


def test_eight_concurrent_streams_all_complete(app_url, registry):
    texts: dict[int, str] = {}

    def user(i: int) -> None:
        client = openai.OpenAI(base_url=app_url + "v1", api_key="x", max_retries=0, timeout=120)
        chunks = ask(client, f"{QUESTION} ({i})", max_tokens=32, stream=True)
        texts[i] = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(texts) == list(range(8)) and all(t.strip() for t in texts.values())
    assert registry.batcher(ModelKey(TEXT_MODEL, Precision("fp32"))).peak_rows >= 2


def test_a_thousand_message_conversation_is_trimmed_to_the_window_and_answered(oai):
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"Message number {i} about loops."}
             for i in range(999)] + [{"role": "user", "content": QUESTION}]
    start = time.perf_counter()
    reply = oai.chat.completions.create(model=TEXT_MODEL, messages=turns, max_tokens=4, temperature=0)
    assert reply.choices[0].message.content and reply.usage.prompt_tokens <= UI_CONFIG.limits.max_context_tokens
    assert time.perf_counter() - start < 15  # dropping turns two at a time took 19 s here
