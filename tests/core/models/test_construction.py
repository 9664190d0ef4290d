"""One model built at a time: transformers changes torch's process-wide default dtype while it builds a model, so a
second build waits for the first, and the default comes back whatever the order."""

from __future__ import annotations

import threading

import torch

from core.models import budget, loading
from core.models.catalog import default_catalog
from core.models.hardware import Precision
from tests.conftest import DENSE_MODEL, TEXT_MODEL


def test_a_build_waits_while_another_threads_build_holds_bf16_as_the_default(hardware, monkeypatch):
    inside, release, counted = threading.Event(), threading.Event(), threading.Event()
    set_default = torch.set_default_dtype

    def held_in_bf16(dtype: torch.dtype) -> None:
        set_default(dtype)
        if dtype == torch.bfloat16 and threading.current_thread().name == "bf16 load":
            inside.set()
            release.wait(10)  # the bf16 load stops halfway through its build

    monkeypatch.setattr(torch, "set_default_dtype", held_in_bf16)
    catalog = default_catalog()
    loaded, params = [], []
    load = threading.Thread(name="bf16 load", target=lambda: loaded.append(
        loading.load_full(catalog.get(DENSE_MODEL), Precision.BF16, hardware)))
    load.start()
    try:
        assert inside.wait(10)
        estimate = threading.Thread(target=lambda: (params.append(budget.count_parameters(catalog.get(TEXT_MODEL))),
                                                    counted.set()))
        estimate.start()
        assert not counted.wait(0.5)  # a meta-device build of another model waits for the load's build
    finally:
        release.set()
        load.join(30)
    estimate.join(30)
    assert loaded[0].dtype == "bfloat16" and params[0] > 0
    assert torch.get_default_dtype() == torch.float32
