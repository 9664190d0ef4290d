"""ZeroGPU helpers: off the Space they do nothing; the GPU slot is sized from the request and clamped."""

from __future__ import annotations

import sys

import pytest

from core.serving.zerogpu import ZeroGpuSetupError, gpu_decorator, import_spaces_first, plan_budget, zero_gpu_enabled
from core.space.config import ZeroGpuSection

ZERO = ZeroGpuSection(enabled=True, max_duration_s=120, overhead_s=10, load_s=60, prefill_tokens_per_s=4000,
                      decode_tokens_per_s={"bf16": 20, "fp32": 10}, default_decode_tokens_per_s=5)


@pytest.mark.parametrize(("value", "on"), [("true", True), ("1", True), ("True", True), ("", False), ("false", False)])
def test_zero_gpu_is_read_from_spaces_zero_gpu(value, on):
    assert zero_gpu_enabled({"SPACES_ZERO_GPU": value}) is on


def test_off_zerogpu_nothing_imports_spaces(monkeypatch):
    monkeypatch.delitem(sys.modules, "spaces", raising=False)  # the package is installed here (dev requirements)
    assert import_spaces_first({}) is False
    assert gpu_decorator(environ={}) is None
    assert "spaces" not in sys.modules


def test_on_zerogpu_spaces_imported_after_torch_is_refused(monkeypatch):
    monkeypatch.delitem(sys.modules, "spaces", raising=False)
    assert "torch" in sys.modules  # the test process has it
    with pytest.raises(ZeroGpuSetupError, match="before importing anything that imports torch"):
        import_spaces_first({"SPACES_ZERO_GPU": "true"})


def test_a_request_that_fits_gets_its_estimated_duration_and_all_its_tokens():
    budget = plan_budget(ZERO, prompt_tokens=4000, max_new_tokens=200, precision="bf16", resident=True)
    assert (budget.duration_s, budget.max_new_tokens, budget.note) == (21, 200, "")  # 10 + 1 + 200/20


def test_a_model_still_to_load_asks_for_more_time():
    cold = plan_budget(ZERO, 0, 100, "bf16", resident=False)
    warm = plan_budget(ZERO, 0, 100, "bf16", resident=True)
    assert cold.duration_s - warm.duration_s == 60


def test_a_long_request_is_clamped_to_the_limit_with_fewer_tokens_and_a_note():
    budget = plan_budget(ZERO, prompt_tokens=0, max_new_tokens=4096, precision="bf16", resident=True)
    assert budget.duration_s == 120 and budget.max_new_tokens == (120 - 10) * 20
    assert "at most 120 s" in budget.note and "4,096 to 2,200" in budget.note


def test_an_unlisted_precision_uses_the_default_decode_speed():
    assert plan_budget(ZERO, 0, 50, "int4", resident=True).duration_s == 10 + 50 // 5
