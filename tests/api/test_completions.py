"""POST /v1/completions (plain prompts, no chat template) and a non-streamed request whose client leaves.

Through the official `openai` client against the running app; answers are compared with the Service's own answer
to the same PromptRequest in this process.
"""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest

from core.generation.prompting import PromptRequest
from core.generation.sampling import SamplingParams
from core.models.hardware import Precision
from core.models.loading import ModelKey
from core.serving.service import Service, TextDelta
from tests.conftest import DENSE_MODEL, TEXT_MODEL
from tests.core.serving.batch_driver import run_out_of_memory_once

PROMPT = "def fibonacci(n):\n    "




def continuation(service: Service, prompt: str, model: str, max_tokens: int) -> str:
    params = SamplingParams(max_new_tokens=max_tokens, temperature=0, top_k=0, top_p=1.0)
    events = service.stream(PromptRequest(prompt), model, "fp32", params)
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_a_plain_prompt_is_continued_as_written_with_usage(oai, service, deepseek):
    reply = oai.completions.create(model=TEXT_MODEL, prompt=PROMPT, max_tokens=12, temperature=0)
    assert reply.object == "text_completion" and reply.id.startswith("cmpl-")
    assert reply.choices[0].text == continuation(service, PROMPT, TEXT_MODEL, 12)
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 12
    assert reply.usage.prompt_tokens == len(deepseek.tokenizer(PROMPT)["input_ids"])  # no chat template around it


def test_a_streamed_completion_arrives_in_chunks_with_usage_last(oai, service):
    chunks = list(oai.completions.create(model=DENSE_MODEL, prompt=[PROMPT], max_tokens=20, temperature=0,
                                         stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == continuation(service, PROMPT, DENSE_MODEL, 20)
    assert sum(1 for c in chunks if c.choices and c.choices[0].text) >= 2
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 20


def test_a_stop_string_ends_the_continuation(oai):
    full = oai.completions.create(model=TEXT_MODEL, prompt=PROMPT, max_tokens=16, temperature=0).choices[0].text
    word = full.split()[1]
    reply = oai.completions.create(model=TEXT_MODEL, prompt=PROMPT, max_tokens=16, temperature=0, stop=word)
    assert reply.choices[0].text == full[:full.index(word)] and reply.choices[0].finish_reason == "stop"


BAD_COMPLETIONS = [  # (body fields, status, words in the message)
    ({"prompt": "   "}, 400, "prompt is empty"),
    ({"prompt": ["one", "two"]}, 400, "one string"),
    ({"prompt": [1, 2, 3]}, 400, "one string"),
    ({"prompt": "hi", "echo": True}, 400, "echo"),
    ({"prompt": "hi", "suffix": "end"}, 400, "suffix"),
    ({"prompt": "hi", "best_of": 3}, 400, "best_of"),
    ({"prompt": "hi", "logprobs": 2}, 400, "logprobs"),
    ({"prompt": "hi", "max_tokens": 0}, 400, "max_tokens must be between 1"),
    ({"prompt": "x" * 1_000_000}, 413, "characters"),
    ({"prompt": "loop " * 6000}, 413, "tokens"),  # under the character limit, over the token window
]


@pytest.mark.parametrize("fields,status,words", BAD_COMPLETIONS, ids=[f"{b[1]}-{b[2]}" for b in BAD_COMPLETIONS])
def test_bad_completions_are_openai_errors_and_the_server_keeps_serving(oai, fields, status, words):
    kind = openai.BadRequestError if status == 400 else openai.APIStatusError
    with pytest.raises(kind) as caught:
        oai.completions.create(**{"model": TEXT_MODEL, "max_tokens": 4, **fields})
    assert caught.value.status_code == status and words in caught.value.message
    assert "Traceback" not in caught.value.response.text
    assert oai.completions.create(model=TEXT_MODEL, prompt="Hello", max_tokens=2).choices[0].text is not None


def test_an_unknown_model_is_not_found(oai):
    with pytest.raises(openai.NotFoundError, match="Unknown model"):
        oai.completions.create(model="nope/model", prompt="hi", max_tokens=4)


@pytest.mark.parametrize("route,body", [
    ("v1/chat/completions", {"messages": [{"role": "user", "content": "What is a generator?"}]}),
    ("v1/completions", {"prompt": PROMPT}),
])
def test_a_non_streamed_request_whose_client_leaves_stops_the_model(app_url, registry, route, body):
    key = ModelKey(TEXT_MODEL, Precision("fp32"))
    request = {"model": TEXT_MODEL, "max_tokens": 2000, "temperature": 0, **body}  # greedy: runs all 2,000 tokens
    left: list[object] = []

    def client() -> None:  # reads nothing for 2 s, then hangs up (the read timeout closes the connection)
        try:
            left.append(httpx.post(app_url + route, json=request, timeout=httpx.Timeout(60, read=2.0)).json())
        except httpx.ReadTimeout as exc:
            left.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    deadline = time.monotonic() + 30
    while registry.running(key) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert registry.running(key) == 1  # answering
    thread.join(30)
    assert isinstance(left[0], httpx.ReadTimeout), str(left)[-300:]  # it left before the 2,000 tokens were done
    deadline = time.monotonic() + 5
    while registry.running(key) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert registry.running(key) == 0 and registry.batcher(key).active() == 0


def test_a_non_streamed_answer_that_fails_midway_gets_its_own_error(oai, deepseek, monkeypatch):
    oai.completions.create(model=TEXT_MODEL, prompt=PROMPT, max_tokens=2)  # resident before counting forwards
    run_out_of_memory_once(monkeypatch, deepseek)
    with pytest.raises(openai.InternalServerError, match="ran out of memory") as caught:
        oai.completions.create(model=TEXT_MODEL, prompt=PROMPT, max_tokens=8)
    assert caught.value.status_code == 503  # the readable error's status, not a bare 500
