"""Heavy request work runs on a thread of its own, so no OpenMP pool outlives it on a server's request thread."""

from __future__ import annotations

import contextvars
import ctypes
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import torch
from PIL import Image

from core.config import LimitsConfig
from core.generation.batch_caption import CaptionBatchRequest, CaptionItem
from core.generation.sampling import SamplingParams
from core.paths import ASSETS
from core.quant.comparison import compare_precisions
from core.serving.own_thread import call_on_own_thread, iterate_on_own_thread
from core.serving.registry import ModelRegistry
from core.serving.service import CaptionRows, Service

PR_SET_NAME = 15
GREEDY = SamplingParams(max_new_tokens=4, temperature=0.0, seed=0)
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def test_call_returns_the_result_raises_the_error_and_keeps_the_context() -> None:
    request_id.set("r-1")
    assert call_on_own_thread(lambda: (threading.current_thread().name, request_id.get()), "t") == ("t", "r-1")
    with pytest.raises(KeyError, match="missing"):
        call_on_own_thread(lambda: {}["missing"], "t")


def test_iterate_hands_over_every_item_then_the_error() -> None:
    def numbers() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("third failed")

    got = []
    with pytest.raises(ValueError, match="third failed"):
        for n in iterate_on_own_thread(numbers, "t"):
            got.append(n)
    assert got == [1, 2]
    with pytest.raises(RuntimeError, match="no start"):
        list(iterate_on_own_thread(lambda: (_ for _ in ()).throw(RuntimeError("no start")), "t"))


def test_leaving_early_closes_the_producer() -> None:
    closed = threading.Event()
    produced = []

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                produced.append(n)
                yield n
                n += 1
        finally:
            closed.set()

    items = iterate_on_own_thread(endless, "t")
    assert [next(items), next(items)] == [0, 1]
    items.close()
    assert closed.wait(2.0)
    assert len(produced) <= 4  # it ran at most one item ahead of the consumer, plus the one it was handing over


def pool_threads_after(work: Callable[[], object], name: str) -> int:
    """Threads named like the long-lived 'request thread' that ran work, once it is idle (itself excluded).

    Threads inherit their creator's name on Linux, so OpenMP workers started for that thread carry it; a thread of
    its own started by the work carries it too, but ends with the work (and its workers with it). Process-wide
    pools started lazily (the tokenizers' rayon threads) must exist before: see the warm fixture."""
    jobs: queue.Queue[Callable[[], object] | None] = queue.Queue()
    done: queue.Queue[BaseException | None] = queue.Queue()

    def request_thread() -> None:
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode(), 0, 0, 0)
        while (job := jobs.get()) is not None:
            try:
                job()
                done.put(None)
            except BaseException as exc:  # noqa: BLE001 - re-raised by the test
                done.put(exc)

    thread = threading.Thread(target=request_thread, daemon=True)
    thread.start()
    jobs.put(work)
    error = done.get(timeout=300)
    if error is not None:
        raise error
    deadline = time.monotonic() + 3.0
    while True:  # workers of threads that ended leave shortly after
        named = sum(_name(t) == name for t in os.listdir("/proc/self/task")) - 1
        if named == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    jobs.put(None)
    thread.join(5)
    return named


def _name(task: str) -> str:
    try:
        with open(f"/proc/self/task/{task}/comm") as f:
            return f.read().strip()
    except OSError:  # the thread ended meanwhile
        return ""


@pytest.fixture
def two_torch_threads(registry: ModelRegistry) -> Iterator[None]:
    for model_id in ("bundled/qwen2-tiny", "bundled/deepseek-vl-tiny"):  # start the tokenizers' rayon pool now
        registry.get(model_id, "fp32").tokenizer(["warm up", "the pools"] * 8)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # a pool of one thread starts no worker: nothing to see
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("two_torch_threads")
def test_a_comparison_leaves_no_openmp_pool_on_the_request_thread(registry: ModelRegistry) -> None:
    service = Service(registry, LimitsConfig())
    prompt = "Explain what a list is."
    # the control: the same comparison run on the request thread itself leaves a pool there
    assert pool_threads_after(lambda: compare_precisions(registry, "bundled/qwen2-tiny", ["int8"], prompt,
                                                         GREEDY, quality_tokens=32), "req-control") >= 1
    compare = lambda: service.compare("bundled/qwen2-tiny", ["int8"], prompt, GREEDY)  # noqa: E731
    assert pool_threads_after(compare, "req-compare") == 0


@pytest.mark.usefixtures("two_torch_threads")
def test_a_caption_batch_and_a_caption_comparison_leave_no_pool(registry: ModelRegistry) -> None:
    service = Service(registry, LimitsConfig())
    image = Image.open(ASSETS / "images" / "large_red_circle_left.png").convert("RGB")
    batch = CaptionBatchRequest(tuple(CaptionItem(f"{i}.png", image) for i in range(3)))
    rows: list[object] = []

    def caption_batch() -> None:
        events = service.caption_batch(batch, "bundled/deepseek-vl-tiny", "fp32", GREEDY)
        rows.extend(row for e in events if isinstance(e, CaptionRows) for row in e.rows)

    assert pool_threads_after(caption_batch, "req-batch") == 0
    assert len(rows) == 3 and all(r.caption and not r.error for r in rows)  # type: ignore[attr-defined]
    columns: list[object] = []
    assert pool_threads_after(lambda: columns.extend(service.compare_captions(
        "bundled/deepseek-vl-tiny", ["int8"], [image, image])), "req-vcompare") == 0
    assert [c.precision.value for c in columns] == ["fp32", "int8"]  # type: ignore[attr-defined]
