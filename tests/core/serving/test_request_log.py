"""The operator's log: one line per request; user errors without a traceback, bugs with one."""

from __future__ import annotations

import logging

import pytest

from core.errors import EmptyInputError
from core.serving.request_log import InternalError, logged_request


def records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "playground.requests"]


def test_a_request_logs_one_line_with_its_figures(caplog):
    caplog.set_level(logging.INFO)
    with logged_request("/chat", "bundled/x", "fp32") as record:
        record.prompt_tokens, record.new_tokens = 12, 34
    (line,) = records(caplog)
    assert line.getMessage().startswith("/chat model=bundled/x precision=fp32 prompt_tokens=12 new_tokens=34 ms=")
    assert line.getMessage().endswith("outcome=ok") and "\n" not in line.getMessage()


def test_the_time_to_the_first_text_is_logged_once_there_was_text(caplog):
    caplog.set_level(logging.INFO)
    with logged_request("/chat", "bundled/x", "fp32") as record:
        record.mark_first_text()
        first = record.first_text_at
        record.mark_first_text()  # later text changes nothing
    with logged_request("/chat", "bundled/x", "fp32"):
        pass
    with_text, without = (r.getMessage() for r in records(caplog))
    assert record.first_text_at == first
    ms, ttft = (int(with_text.split(f" {key}=")[1].split()[0]) for key in ("ms", "ttft_ms"))
    assert 0 <= ttft <= ms and with_text.endswith(f"ttft_ms={ttft} outcome=ok")
    assert "ttft_ms" not in without


def test_a_user_error_is_one_line_without_a_traceback(caplog):
    caplog.set_level(logging.INFO)
    with pytest.raises(EmptyInputError), logged_request("/chat"):
        raise EmptyInputError("Type a message\nfirst.")
    (line,) = records(caplog)
    assert line.levelno == logging.INFO and line.exc_info is None
    assert line.getMessage().endswith("outcome=refused EmptyInputError: Type a message first.")


def test_a_bug_is_logged_with_its_traceback_and_the_visitor_gets_a_reference(caplog):
    with pytest.raises(InternalError, match="reference") as raised, logged_request("/caption"):
        raise KeyError("boom")
    (line,) = records(caplog)
    ref = str(raised.value).split("reference ")[1].split(")")[0]
    assert line.levelno == logging.ERROR and line.exc_info is not None and f"bug {ref} KeyError" in line.getMessage()


def test_a_disconnect_is_logged_as_such(caplog):
    caplog.set_level(logging.INFO)

    def stream():
        with logged_request("/chat"):
            yield "a"
            yield "b"

    iterator = stream()
    next(iterator)
    iterator.close()
    assert records(caplog)[-1].getMessage().endswith("outcome=disconnected")
