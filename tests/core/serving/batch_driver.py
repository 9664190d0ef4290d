"""Drive a Batcher's steps by hand on the real models and read each row's token ids (shared by the batching tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import torch

from core.generation.sampling import SamplingParams
from core.generation.stream import MeteredStreamer
from core.serving.batching import Batcher, Row
from core.serving.row_sampling import RowSampler


def inputs_for(loaded, text: str) -> dict[str, torch.Tensor]:
    ids = torch.tensor([loaded.tokenizer(text)["input_ids"]])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


class RecordingStreamer(MeteredStreamer):
    """A row's streamer that also keeps the token ids it was given."""

    def __init__(self, tokenizer) -> None:
        super().__init__(tokenizer, timeout=5)
        self.next_tokens_are_prompt = False
        self.ids: list[int] = []
        self.stop_after: tuple[int, threading.Event] | None = None  # (n, event): set event once n ids arrived

    def put(self, value: torch.Tensor) -> None:
        self.ids.extend(value.tolist())
        super().put(value)
        if self.stop_after is not None and len(self.ids) >= self.stop_after[0]:
            self.stop_after[1].set()  # a person pressing Stop right after seeing the n-th token


def greedy(max_new_tokens: int) -> SamplingParams:
    return SamplingParams(max_new_tokens=max_new_tokens, temperature=0, repetition_penalty=1.0)


def make_row(loaded, text: str, params: SamplingParams) -> Row:
    prompt = inputs_for(loaded, text)["input_ids"][0].tolist()
    streamer = RecordingStreamer(loaded.tokenizer)
    return Row(prompt, params, RowSampler(params, prompt, loaded.device), streamer, threading.Event())


def generate_ids(loaded, text: str, params: SamplingParams) -> list[int]:
    inputs = inputs_for(loaded, text)
    with torch.inference_mode():
        out = loaded.model.generate(**inputs, **params.generate_kwargs(), pad_token_id=loaded.tokenizer.eos_token_id)
    return out[0, inputs["input_ids"].shape[1]:].tolist()


def drive(batcher: Batcher, rows: list[Row], joins: dict[int, list[Row]] | None = None) -> list[int]:
    """Run the batcher's steps in this thread: rows start together, joins[k] join before step k; batch sizes."""
    joins, sizes, step = joins or {}, [], 0
    state = None
    with torch.inference_mode():
        state = batcher._step(batcher._admit(None, rows))  # as the scheduler: one prefill, one step
        while state is not None or any(k > step for k in joins):
            step += 1
            sizes.append(len(state.rows) if state is not None else 0)
            state = batcher._step(batcher._admit(state, joins.get(step, [])))
    return sizes


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll condition until it holds; fail (never hang) after timeout_s. For state no event announces."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {timeout_s} s"
        time.sleep(0.001)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread; two threads on a shared, busy CPU spin (10x slower here).
    Autouse in every test module that imports it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_out_of_memory_once(monkeypatch: pytest.MonkeyPatch, loaded, at_call: int = 3) -> None:
    """The model's forward raises CUDA's out-of-memory error once, at its at_call-th call (no CUDA here)."""
    real_forward = loaded.model.forward
    calls = {"n": 0}

    def forward_that_runs_out_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at_call:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(loaded.model, "forward", forward_that_runs_out_once)
