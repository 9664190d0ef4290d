"""The API's translation, without a server: OpenAI JSON -> Service request and settings, and stop strings."""

from __future__ import annotations

import pytest

from api import api_enabled
from api.errors import ApiError, from_playground
from api.requests import parse_chat
from api.responses import StopStrings, finish_reason_of
from core.config import LimitsConfig
from core.errors import BusyError, OutOfMemoryError, UnknownModelError
from core.generation.prompting import ChatRequest, ChatTurn
from core.generation.stream import GenerationStats

LIMITS = LimitsConfig()


def test_messages_become_system_history_and_the_last_user_turn():
    call = parse_chat({"model": "m", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
        {"role": "assistant", "content": "Hello."},
        {"role": "developer", "content": "Use Python."},
        {"role": "user", "content": "What is a list?"}],
        "max_completion_tokens": 12, "temperature": 0, "seed": 4, "stop": "\n\n"}, LIMITS)
    history = (ChatTurn("user", "Hi\nthere"), ChatTurn("assistant", "Hello."))
    assert call.request == ChatRequest("What is a list?", history, "Be brief.\n\nUse Python.")
    assert (call.params.max_new_tokens, call.params.temperature, call.params.seed) == (12, 0.0, 4)
    assert call.params.top_k == 0 and call.stop == ("\n\n",) and not call.stream


@pytest.mark.parametrize("fields,param", [
    ({"messages": [{"role": "assistant", "content": "hi"}]}, "messages"),
    ({"messages": [{"role": "tool", "content": "42"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"max_tokens": True}, "max_tokens"),
    ({"top_p": 0}, "top_p"),
    ({"seed": -1}, "seed"),
    ({"tools": [{"type": "function"}]}, "tools"),
    ({"logprobs": True}, "logprobs"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"stream": "yes"}, "stream"),
    ({"model": 3}, "model"),
])
def test_each_refusal_names_its_field(fields, param):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    with pytest.raises(ApiError) as caught:
        parse_chat(body, LIMITS)
    assert caught.value.status == 400 and caught.value.param == param


def test_service_errors_get_openais_statuses():
    assert from_playground(UnknownModelError("x", ["y"])).status == 404
    busy = from_playground(BusyError("busy"))
    assert busy.status == 429 and busy.headers["Retry-After"]
    assert from_playground(OutOfMemoryError("no room")).status == 503


def test_stop_strings_hold_back_a_possible_start_and_cut_at_the_match():
    stops = StopStrings(("END",))
    assert stops.feed("abc E") == "abc "  # "E" might start "END"
    assert stops.feed("x") == "Ex"
    assert stops.feed(" EN") == " "
    assert stops.feed("D more") == "" and stops.hit and stops.flush() == ""
    plain = StopStrings(())
    assert plain.feed("abc") == "abc" and plain.flush() == ""


def test_finish_reason_is_length_only_when_the_limit_ended_the_answer():
    stats = GenerationStats(3, 8, 0.1, 0.5, "cpu", "fp32", False)
    assert finish_reason_of(stats, 8, False) == "length"
    assert finish_reason_of(stats, 9, False) == "stop" and finish_reason_of(stats, 8, True) == "stop"


def test_the_api_is_off_on_zerogpu_unless_the_config_turns_it_on():
    assert api_enabled(None, zero_gpu=False) and not api_enabled(None, zero_gpu=True)
    assert api_enabled(True, zero_gpu=True) and not api_enabled(False, zero_gpu=False)
