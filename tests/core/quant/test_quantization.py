import copy
import io
from pathlib import Path

import pytest
import torch

from core.errors import UnsupportedPrecisionError
from core.models.catalog import default_catalog
from core.models.hardware import Precision
from core.quant import gptq
from core.quant.backends import available_precisions, kernel_of, load_model
from core.quant.int8_linear import Int8DynamicLinear
from core.quant.kernels import HEAD_INT8, tied_head
from core.quant.moe import LinearExperts, unfuse_experts
from core.quant.quality import compare_logits
from core.quant.weights import weight_report
from tests.conftest import DENSE_MODEL, TEXT_MODEL, VISION_MODEL

IDS = torch.tensor([[5, 17, 300, 42, 9, 1200, 77, 8, 640, 3, 2500, 19]])


def test_unfused_experts_give_the_fused_models_logits(deepseek):
    model = copy.deepcopy(deepseek.model)
    assert unfuse_experts(model) == 3  # the 3 MoE layers of the bundled model
    assert isinstance(model.model.layers[1].mlp.experts, LinearExperts)
    with torch.no_grad():
        assert torch.allclose(model(IDS).logits, deepseek.model(IDS).logits, atol=1e-6)


def test_cpu_offers_quanto_torchao_and_gptq_but_not_bitsandbytes(hardware):
    if hardware.device != "cpu":
        pytest.skip("CPU rule")
    offered = available_precisions(default_catalog().get(TEXT_MODEL), hardware)
    assert offered[0] == Precision.FP32
    assert {Precision.INT8, Precision.INT4, Precision.GPTQ_INT4, Precision.GPTQ_INT8} <= set(offered)
    assert Precision.BNB_NF4 not in offered and Precision.BNB_INT8 not in offered


def test_bitsandbytes_on_cpu_is_refused_with_the_reason(hardware):
    if hardware.device != "cpu":
        pytest.skip("CPU rule")
    with pytest.raises(UnsupportedPrecisionError, match="needs a CUDA GPU"):
        load_model(default_catalog().get(DENSE_MODEL), Precision.BNB_NF4, hardware)


def test_quantized_precision_loads_once_and_is_the_chat_tabs_model(registry):
    first = registry.get(TEXT_MODEL, "int8")
    assert registry.get(TEXT_MODEL, Precision.INT8) is first
    assert first.backend == "optimum-quanto" and first.key.precision == Precision.INT8


def test_int4_quantizes_the_moe_experts_to_under_a_third_of_their_bytes(registry):
    loaded = registry.get(TEXT_MODEL, "int4")
    report = weight_report(loaded.model)
    expert_weight = loaded.model.model.layers[1].mlp.experts[0].gate_proj.weight
    assert type(expert_weight) is not torch.nn.Parameter  # a torchao quantized tensor
    assert "other linear layers" not in report.full_precision_parts
    assert set(report.full_precision_parts) == {"embeddings", "norms", "router"}
    assert report.stored_as() == ("other linear layers int4", "lm_head int8")  # the untied head: 8-bit, said so
    assert report.ratio_at(4) <= 0.2 and report.quantized_ratio <= 0.3 and report.quantized_share > 0.5


def test_int8_keeps_lm_head_embeddings_norms_and_router_in_full_precision(registry):
    loaded = registry.get(TEXT_MODEL, "int8")
    model = loaded.model
    assert set(weight_report(model).full_precision_parts) == {"embeddings", "lm_head", "norms", "router"}
    # a plain (unquantized) tensor in the kernel's activation dtype (bf16 for the CPU packed kernels)
    compute = kernel_of(Precision.INT8, loaded.device).compute_dtype
    assert type(model.lm_head.weight) is torch.nn.Parameter and model.lm_head.weight.dtype == compute


@pytest.mark.parametrize("model_id", [TEXT_MODEL, DENSE_MODEL])
def test_cpu_int4_stores_an_untied_lm_head_in_int8_neither_bf16_nor_4bit(registry, hardware, model_id):
    if hardware.device != "cpu":
        pytest.skip("CPU rule: CUDA int4 keeps its head in full precision")
    loaded = registry.get(model_id, "int4")
    head, report = loaded.model.lm_head, weight_report(loaded.model)
    assert "lm_head" not in report.full_precision_parts and "embeddings" in report.full_precision_parts
    assert "lm_head int8" in report.stored_as() and "lm_head int4" not in report.stored_as()
    assert isinstance(head, Int8DynamicLinear) and head.weight.dtype == torch.int8  # torch._int_mm
    assert loaded.kernel.endswith("lm_head: " + HEAD_INT8.name)
    assert report.ratio_at(4) < report.quantized_ratio < report.ratio_at(8)  # the 4-bit figure is the body alone


def test_int4_leaves_a_head_tied_to_the_embeddings_as_it_is(registry):
    model = registry.get(VISION_MODEL, "int4").model
    assert tied_head(model) and type(model.lm_head) is torch.nn.Linear
    assert model.lm_head.weight is model.get_input_embeddings().weight


@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_reported_memory_agrees_with_serialized_tensor_storage(registry, precision):
    loaded = registry.get(TEXT_MODEL, precision)
    buffer, state = io.BytesIO(), loaded.model.state_dict()
    torch.save(state, buffer)
    pickling = 800 * len(state)  # torch.save's own bytes per entry (measured 340-720 here), not tensor storage
    assert abs(loaded.memory_bytes - buffer.tell()) <= 0.02 * buffer.tell() + pickling
    assert loaded.memory_bytes < 0.65 * registry.get(TEXT_MODEL, "fp32").memory_bytes


def test_4bit_moves_quality_further_than_8bit(registry, deepseek):
    ids = deepseek.tokenizer(Path("assets/text/reference.txt").read_text(), return_tensors="pt").input_ids[0][:512]
    int8 = compare_logits(deepseek.model, registry.get(TEXT_MODEL, "int8").model, ids)
    int4 = compare_logits(deepseek.model, registry.get(TEXT_MODEL, "int4").model, ids)
    assert 0 < int8.kl_mean < int4.kl_mean
    assert int4.top1_agreement < int8.top1_agreement <= 1
    assert abs(int8.perplexity_change) < 0.01


def test_gptq_4bit_quantizes_experts_and_is_cached(gptq4, hardware, monkeypatch):
    report = weight_report(gptq4.model)
    assert gptq4.backend == "GPTQModel"
    assert set(report.full_precision_parts) == {"embeddings", "lm_head", "norms", "router"}
    assert report.quantized_ratio <= 0.3
    cached = gptq.checkpoint_dir(gptq4.entry, 4)
    assert gptq.is_complete(cached) and not list(cached.parent.glob(".*"))  # no temp folder left
    import gptqmodel

    monkeypatch.setattr(gptqmodel.GPTQModel, "load", lambda *a, **k: pytest.fail("re-quantized"))
    assert gptq.quantize_to_cache(gptq4.entry, 4, hardware.device) == cached


def test_interrupted_calibration_leaves_no_cache_to_reuse(hardware, monkeypatch):
    import gptqmodel

    entry = default_catalog().get(DENSE_MODEL)

    class Interrupted:
        def quantize(self, *args, **kwargs):
            raise KeyboardInterrupt  # Ctrl-C in the middle of calibration

    monkeypatch.setattr(gptqmodel.GPTQModel, "load", lambda *a, **k: Interrupted())
    with pytest.raises(KeyboardInterrupt):
        gptq.quantize_to_cache(entry, 8, hardware.device)
    target = gptq.checkpoint_dir(entry, 8)
    assert not target.exists() and not list(target.parent.glob(f".{target.name}-*"))
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")  # a half-written folder from an old crash
    assert not gptq.is_complete(target)
