"""Every value is checked where it enters the core: finite numbers in range, the right types, encodable text."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from core.errors import BadSettingError, InputTooLongError
from core.generation.prompting import ChatRequest, ChatTurn
from core.generation.sampling import SamplingParams
from core.generation.vision import VisionRequest

GOOD = {"max_new_tokens": 16, "temperature": 0.7, "top_p": 0.9, "top_k": 50, "repetition_penalty": 1.0, "seed": 1}


@pytest.mark.parametrize(("name", "value", "message"), [
    ("seed", 1e30, "seed must be at most"),
    ("seed", math.nan, "seed must be a finite"),
    ("max_new_tokens", math.nan, "max new tokens must be a finite"),
    ("max_new_tokens", math.inf, "max new tokens must be a finite"),
    ("max_new_tokens", None, "max new tokens must be a number"),
    ("max_new_tokens", "many", "max new tokens must be a number"),
    ("max_new_tokens", 5.5, "whole number"),
    ("top_k", True, "top-k must be a number"),
    ("temperature", -math.inf, "temperature must be a finite"),
    ("top_p", [0.5], "top-p must be a number"),
])
def test_bad_sampling_values_are_refused_naming_the_setting(name, value, message):
    with pytest.raises(BadSettingError, match=message):
        SamplingParams.from_values(**{**GOOD, name: value})


def test_good_sampling_values_pass_and_negative_seed_means_random():
    params = SamplingParams.from_values(**{**GOOD, "max_new_tokens": "16", "top_k": 50.0, "seed": -1})
    assert params == SamplingParams(16, 0.7, 0.9, 50, 1.0, None)


def test_params_built_directly_are_checked_too():
    with pytest.raises(BadSettingError, match="finite"):
        SamplingParams(max_new_tokens=8, temperature=math.nan).check(100)


@pytest.mark.parametrize("request_", [
    ChatRequest("hi \ud800 there"),
    ChatRequest("hi", system="\udfff"),
    ChatRequest("hi", document="doc \ud83d"),
    ChatRequest(None),  # type: ignore[arg-type]
    ChatRequest(123),  # type: ignore[arg-type]
    ChatRequest("hi", history=(ChatTurn("system", "x"),)),
    ChatRequest("hi", history=(ChatTurn("user", "\ud800"),)),
    VisionRequest(Image.new("RGB", (8, 8)), "what \ud800?"),
    VisionRequest(Image.new("RGB", (8, 8)), style="poetic"),  # type: ignore[arg-type]
    VisionRequest(Image.new("RGB", (8, 8)), question=None),  # type: ignore[arg-type]
])
def test_text_that_is_not_valid_text_is_refused_with_a_message(request_):
    with pytest.raises(BadSettingError):
        request_.check_size(10_000)


@pytest.mark.parametrize(("request_", "message"), [
    (ChatRequest(None), "The message must be text, got NoneType."),  # type: ignore[arg-type]
    (ChatRequest("hi", system="\udfff"),
     "The system prompt has a character that is not valid Unicode (position 0); remove it and try again."),
    (ChatRequest("hi", document="doc \ud83d"), "The document has a character that is not valid Unicode (position 4)"),
    (ChatRequest("hi", answer_start=5), "The answer so far must be text, got int."),  # type: ignore[arg-type]
    (ChatRequest("hi", history=(ChatTurn("user", "a"), ChatTurn("system", "b"))),
     "History item 2 must be a user or assistant message."),
    (ChatRequest("hi", history=(ChatTurn("user", "a"), ChatTurn("assistant", "b \ud800"))),
     "The history message 2 has a character that is not valid Unicode (position 2)"),
])
def test_the_refusal_names_the_field_and_the_place(request_, message):
    with pytest.raises(BadSettingError) as refused:
        request_.check_size(10_000)
    assert str(refused.value).startswith(message)


def test_every_part_of_a_request_counts_towards_the_character_limit_and_the_limit_itself_is_allowed():
    request = ChatRequest("abc", (ChatTurn("user", "de"), ChatTurn("assistant", "fgh")), system="ijkl",
                          document="mnopq", answer_start="rs")
    assert request.text_chars() == 3 + 2 + 3 + 4 + 5 + 2
    request.check_size(19)  # a valid history of both roles at exactly the limit passes
    with pytest.raises(InputTooLongError, match="The input is 19 characters; at most 18 are accepted."):
        request.check_size(18)
