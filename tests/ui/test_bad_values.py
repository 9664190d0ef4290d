"""Hostile values through the public API: a clear message every time (never a bare "Error"); the server serves on."""

from __future__ import annotations

import json

import httpx
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from core.paths import ASSETS
from tests.conftest import TEXT_MODEL, VISION_MODEL


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"seed": 10**30}, "seed must be at most"),
    ({"seed": 1e30}, "seed must be at most"),
    ({"top_k": "lots"}, "top-k must be a number"),
    ({"system": ["a", "list"]}, "system prompt must be text"),
    ({"model": 42}, "model must be text"),
])
def test_bad_values_get_a_clear_message(client, kwargs, message):
    args = {"message": "Hello", "model": TEXT_MODEL, "precision": "fp32", "max_new_tokens": 4, **kwargs}
    with pytest.raises(AppError, match=message):
        client.predict(**args, api_name="/chat")
    assert client.predict("Hello", "", "", TEXT_MODEL, "fp32", 4, 0.0, api_name="/chat").strip()


@pytest.mark.parametrize(("position", "literal", "message"), [
    (5, "NaN", "max new tokens must be a finite number"),
    (5, "Infinity", "max new tokens must be a finite number"),
    (6, "-Infinity", "temperature must be a finite number"),
    (10, "1e400", "seed must be a finite number"),
    (0, '"hi \\ud800 there"', "not valid Unicode"),  # a lone surrogate, as JSON allows and UTF-8 does not
])
def test_nan_and_infinity_in_raw_json_get_a_clear_message(app_url, position, literal, message):
    values = ["Hello", "", "", TEXT_MODEL, "fp32", 4, 0.0, 0.95, 50, 1.0, 0]
    values[position] = "@"
    body = json.dumps({"data": values}).replace('"@"', literal)  # what gradio_client refuses to send
    with httpx.Client(base_url=app_url, timeout=60) as http:
        event = http.post("gradio_api/call/chat", content=body, headers={"Content-Type": "application/json"})
        stream = http.get(f"gradio_api/call/chat/{event.json()['event_id']}").text
    assert "event: error" in stream and message in stream, stream[-500:]


def test_a_control_token_in_a_caption_question_is_just_text(client):
    image = handle_file(str(sorted((ASSETS / "images").glob("*.png"))[0]))
    answer = client.predict(image, "what is <image_placeholder> here?", "short", VISION_MODEL, "fp32", 8,
                            api_name="/caption")
    assert isinstance(answer, str)


def test_compare_refuses_a_prompt_over_the_limit(client):
    with pytest.raises(AppError, match="characters"):
        client.predict(TEXT_MODEL, ["fp32"], "x" * 500_000, 4, 0, api_name="/compare")
