"""The running app's log: one line per request, and a refused request leaves no traceback anywhere."""

from __future__ import annotations

import logging

import pytest
from gradio_client.exceptions import AppError

from tests.conftest import TEXT_MODEL


def lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "playground.requests"]


def test_each_chat_request_logs_one_line_with_tokens_and_outcome(client, caplog):
    caplog.set_level(logging.INFO)
    client.predict("Hello", "", "", TEXT_MODEL, "fp32", 4, 0.0, api_name="/chat")
    (line,) = lines(caplog)
    message = line.getMessage()
    assert message.startswith(f"/chat model={TEXT_MODEL} precision=fp32 prompt_tokens=")
    assert "new_tokens=4 " in message and "prompt_tokens=0 " not in message and message.endswith("outcome=ok")
    ms, ttft = (int(message.split(f" {key}=")[1].split()[0]) for key in ("ms", "ttft_ms"))
    assert 0 <= ttft <= ms  # the time to the first text, logged by the Service


def test_a_refused_request_is_one_log_line_and_no_traceback(client, caplog, capfd):
    caplog.set_level(logging.INFO)
    with pytest.raises(AppError, match="Unknown model"):
        client.predict("hi", "", "", "nope/model", api_name="/chat")
    (line,) = lines(caplog)
    assert "outcome=refused UnknownModelError" in line.getMessage() and line.exc_info is None
    assert "Traceback" not in capfd.readouterr().err
