"""The backend table: which precision each hardware offers and, when it cannot, the reason in words."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from core.errors import UnsupportedPrecisionError
from core.models.catalog import default_catalog
from core.models.hardware import Hardware, Precision, cpu_bf16_missing
from core.quant import backends
from core.quant import kernels as k
from core.quant.backends import (
    available_precisions,
    backend_name,
    bits_of,
    kernel_of,
    load_model,
    precision_note,
    unavailable_reason,
)
from core.quant.backends import unavailable_precisions as not_offered
from tests.conftest import DENSE_MODEL, TEXT_MODEL, VISION_MODEL

CPU = Hardware("cpu", "2 threads", 8 << 30, False)
CUDA = Hardware("cuda", "a GPU stand-in (none here)", 24 << 30, True)  # only read, never used to run anything
QUANTIZED = [Precision.INT8, Precision.INT4, Precision.GPTQ_INT8, Precision.GPTQ_INT4]
# llama.cpp's rows, offered where llama-cpp-python (and its converter) is installed; the table lists them last
GGUF = [p for p in (Precision.GGUF_Q8_0, Precision.GGUF_Q4_0, Precision.GGUF_Q4_K_M)
        if unavailable_reason(default_catalog().get(TEXT_MODEL), p, Hardware("cpu", "", 8 << 30, False)) is None]


def entry(model_id: str):
    return default_catalog().get(model_id)


@pytest.mark.parametrize(("precision", "bits", "name"), [
    (Precision.FP32, 32, "transformers"), (Precision.BF16, 16, "transformers"), (Precision.FP16, 16, "transformers"),
    (Precision.INT8, 8, "optimum-quanto"), (Precision.INT4, 4, "torchao"), (Precision.GPTQ_INT8, 8, "GPTQModel"),
    (Precision.GPTQ_INT4, 4, "GPTQModel"), (Precision.BNB_INT8, 8, "bitsandbytes"),
    (Precision.BNB_NF4, 4, "bitsandbytes"),
])
def test_each_precision_has_its_bits_and_backend(precision, bits, name):
    assert (bits_of(precision), backend_name(precision)) == (bits, name)


def test_the_cpu_offers_full_precision_first_then_the_cpu_quantizers_in_table_order():
    assert available_precisions(entry(TEXT_MODEL), CPU) == [Precision.FP32, Precision.BF16, *QUANTIZED, *GGUF]


def test_a_cpu_without_bf16_units_is_not_offered_bf16_and_told_why_but_still_runs_it_on_request():
    plain = Hardware("cpu", "2 threads", 8 << 30, False, cpu_bf16_missing([]))
    assert Precision.BF16 not in available_precisions(entry(TEXT_MODEL), plain)
    assert Precision.FP32 in available_precisions(entry(TEXT_MODEL), plain)
    missing = dict(not_offered(entry(TEXT_MODEL), plain))
    assert "neither AVX512-BF16 nor AMX" in missing[Precision.BF16]
    assert unavailable_reason(entry(TEXT_MODEL), Precision.BF16, plain) is None  # the API may still ask for it
    assert cpu_bf16_missing(["AVX512-BF16"]) == cpu_bf16_missing(["AMX"]) == ""
    assert Precision.BF16 not in dict(not_offered(entry(TEXT_MODEL), CPU))


def test_a_gpu_offers_its_fast_half_precision_first_and_bitsandbytes_for_dense_models_only():
    bnb = [Precision.BNB_INT8, Precision.BNB_NF4] if importlib.util.find_spec("bitsandbytes") else []
    dense, moe = available_precisions(entry(DENSE_MODEL), CUDA), available_precisions(entry(TEXT_MODEL), CUDA)
    assert dense == [Precision.BF16, Precision.FP16, Precision.FP32, *QUANTIZED, *bnb, *GGUF]
    assert moe == [Precision.BF16, Precision.FP16, Precision.FP32, *QUANTIZED, *GGUF]
    if not bnb:
        assert unavailable_reason(entry(DENSE_MODEL), Precision.BNB_NF4, CUDA) == \
            "bitsandbytes is not installed (pip install bitsandbytes==0.50.2)."


def test_vision_models_get_full_precisions_and_their_language_part_quantized_only():
    assert available_precisions(entry(VISION_MODEL), CPU) == [Precision.FP32, Precision.BF16, Precision.INT8,
                                                              Precision.INT4]
    assert unavailable_reason(entry(VISION_MODEL), Precision.GPTQ_INT4, CPU) == \
        "quantized loading is offered for text models only."
    assert unavailable_reason(entry(VISION_MODEL), Precision.BF16, CPU) is None


@pytest.mark.parametrize(("model_id", "precision", "hardware", "reason"), [
    (TEXT_MODEL, Precision.FP16, CPU, "fp16 is not available on cpu; choose one of: fp32, bf16."),
    (DENSE_MODEL, Precision.BNB_NF4, CPU, "bitsandbytes needs a CUDA GPU; this machine runs on cpu."),
    (TEXT_MODEL, Precision.BNB_INT8, CUDA, "bitsandbytes leaves DeepSeek's fused MoE experts in full precision and "
                                           "fails on DeepseekV3's kv_b_proj; use int8/int4 or GPTQ, which quantize "
                                           "the experts."),
])
def test_unavailable_precisions_say_why(model_id, precision, hardware, reason):
    assert unavailable_reason(entry(model_id), precision, hardware) == reason


def test_a_missing_package_names_what_to_install(monkeypatch):
    made_up = backends.Backend("made-up", 8, backends.q.load_packed, "no_such_package.sub", "made-up==1")
    monkeypatch.setitem(backends.BACKENDS, Precision.INT8, made_up)
    assert unavailable_reason(entry(TEXT_MODEL), Precision.INT8, CPU) == \
        "no_such_package.sub is not installed (pip install made-up==1)."
    assert Precision.INT8 not in available_precisions(entry(TEXT_MODEL), CPU)


def test_load_model_refuses_with_the_reason_and_the_model_name():
    with pytest.raises(UnsupportedPrecisionError) as full:
        load_model(entry(TEXT_MODEL), Precision.FP16, CPU)
    assert str(full.value) == "fp16 is not available on cpu; choose one of: fp32, bf16."
    with pytest.raises(UnsupportedPrecisionError) as quantized:
        load_model(entry(DENSE_MODEL), Precision.BNB_NF4, CPU)
    assert str(quantized.value) == (f"bnb nf4 (bitsandbytes, CUDA) is not available for {DENSE_MODEL}: "
                                    "bitsandbytes needs a CUDA GPU; this machine runs on cpu.")


def test_load_model_refuses_what_the_model_itself_cannot_take():
    with pytest.raises(UnsupportedPrecisionError, match=f"for {VISION_MODEL}: quantized loading is offered for text"):
        load_model(entry(VISION_MODEL), Precision.GPTQ_INT4, CPU)  # int8/int4 take DeepSeek-VL's language part


def test_load_model_goes_through_the_precisions_loader(monkeypatch):
    calls = []
    monkeypatch.setitem(backends.BACKENDS, Precision.FP32, backends.Backend(
        "transformers", 32, lambda e, p, h, _k: calls.append((e.model_id, p, h)) or "loaded", text_only=False))
    assert load_model(entry(TEXT_MODEL), Precision.FP32, CPU) == "loaded"
    assert calls == [(TEXT_MODEL, Precision.FP32, CPU)]


def test_load_model_hands_the_loader_the_kernel_the_table_chose_for_this_device(monkeypatch):
    calls = []
    made_up = backends.Backend("made-up", 8, lambda e, p, h, kernel: calls.append(kernel) or "loaded",
                               kernels={"cpu": k.CPU_INT8, "cuda": k.CUDA_INT8})
    monkeypatch.setitem(backends.BACKENDS, Precision.INT8, made_up)
    assert load_model(entry(TEXT_MODEL), Precision.INT8, CPU) == "loaded"
    assert calls == [k.CPU_INT8]
    assert kernel_of(Precision.INT8, "cuda") is k.CUDA_INT8 and kernel_of(Precision.FP32, "cpu") is None


def test_full_precision_loads_the_checkpoint_through_transformers():
    loaded = load_model(entry(DENSE_MODEL), Precision.FP32, CPU)
    assert (loaded.key.model_id, loaded.key.precision, loaded.device) == (DENSE_MODEL, Precision.FP32, "cpu")
    assert next(loaded.model.parameters()).dtype == torch.float32


def test_only_vision_models_get_a_note_on_what_a_quantized_precision_leaves_in_full():
    assert precision_note(entry(VISION_MODEL), Precision.INT8) == \
        "language model quantized; vision tower, aligner and lm_head stay full precision"
    assert precision_note(entry(TEXT_MODEL), Precision.INT8) == ""
    assert precision_note(entry(VISION_MODEL), Precision.FP32) == ""


def test_llama_cpp_rows_are_refused_with_the_gguf_reason(monkeypatch):
    """llama.cpp needs its converter's packages too, so its rows ask gguf_missing_reason(), not a plain import."""
    monkeypatch.setattr(backends, "gguf_missing_reason", lambda: "gguf is not installed (pip install gguf==0.19.0)")
    for precision in (Precision.GGUF_Q8_0, Precision.GGUF_Q4_0, Precision.GGUF_Q4_K_M):
        assert unavailable_reason(entry(TEXT_MODEL), precision, CPU) == \
            "gguf is not installed (pip install gguf==0.19.0)"
