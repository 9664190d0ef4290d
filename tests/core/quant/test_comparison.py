import pytest

from core.errors import EmptyInputError
from core.generation.sampling import SamplingParams
from core.models.catalog import default_catalog
from core.models.hardware import detect_hardware
from core.quant.comparison import compare_precisions
from core.serving.registry import ModelRegistry
from tests.conftest import DENSE_MODEL

GREEDY = SamplingParams(max_new_tokens=6, temperature=0, seed=0)


def test_comparison_uses_the_registrys_shared_models(registry):
    run = compare_precisions(registry, DENSE_MODEL, ["int8", "fp32", "int8"], "What is a set?", GREEDY)
    assert [r.precision for r in run.results] == ["int8", "fp32"]  # duplicates dropped, order kept
    int8 = run.results[0]
    assert int8.memory_bytes == registry.get(DENSE_MODEL, "int8").memory_bytes
    assert 0 < int8.kl_mean < 0.01 and int8.greedy_agreement > 0.5 and int8.output
    assert run.results[1].perplexity_change == 0 and run.quality_tokens == 512


def test_admission_refuses_a_precision_that_would_not_fit_and_keeps_the_rest():
    # room for the fp32 reference (~6.2 MB) but not for quantizing another copy next to it
    small = ModelRegistry(default_catalog(), detect_hardware(), memory_budget_bytes=8 << 20)
    run = compare_precisions(small, DENSE_MODEL, ["fp32", "int4"], "Hello", GREEDY)
    assert run.results[0].error is None
    assert "Not enough memory for int4" in run.results[1].error
    assert all(m.key.precision != "int4" for m in small.resident())


def test_empty_prompt_is_refused_before_any_model_work(registry):
    with pytest.raises(EmptyInputError, match="Type a prompt"):
        compare_precisions(registry, DENSE_MODEL, ["fp32"], "  ", GREEDY)


def test_ttft_includes_the_prefill_it_reports_and_each_stage_is_named(registry):
    seen: list[tuple[float, str]] = []
    run = compare_precisions(registry, DENSE_MODEL, ["fp32", "int8"], "What is a dict?", GREEDY,
                             lambda fraction, message: seen.append((fraction, message)))
    for r in run.results:  # the prefill is timed inside the very answer whose time to first token is reported
        assert 0 < r.prefill_s <= r.ttft_s and r.prefill_spread >= 0, r
    messages = " | ".join(m for _, m in seen)
    int8 = run.results[1].label
    for stage in ("reference: scoring the reference text", f"{int8}: warm-up", f"{int8}: answering the prompt",
                  f"{int8}: scoring quality against the reference", f"{int8}: greedy agreement"):
        assert stage in messages
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_a_load_names_its_stage_to_the_request_waiting_on_it(gptq4):
    from core.quant import gptq
    from core.quant.stages import StageBoard

    board = StageBoard("loading")
    board.watching(lambda: gptq.load_checkpoint(gptq.checkpoint_dir(gptq4.entry, 4), "cpu"))
    assert board.current == "loading the GPTQ checkpoint"
