import time

import pytest
import torch
from transformers import AutoModelForCausalLM

from core.errors import ModelUnavailableError, UnsupportedPrecisionError
from core.models.catalog import default_catalog
from core.models.hardware import Precision
from core.quant.backends import load_model
from tests.conftest import TEXT_MODEL


def test_bundled_deepseek_is_a_real_deepseek_v3_with_mla_and_moe(deepseek):
    config = deepseek.model.config
    assert type(deepseek.model).__name__ == "DeepseekV3ForCausalLM"
    assert config.kv_lora_rank > 0 and config.n_routed_experts > 1
    assert deepseek.context_window == 32768
    assert deepseek.device == "cpu" and deepseek.dtype == "float32"


def test_bundled_model_loads_through_plain_from_pretrained(deepseek):
    plain = AutoModelForCausalLM.from_pretrained(deepseek.entry.source)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.allclose(plain(ids).logits, deepseek.model(ids).logits)


def test_memory_is_the_summed_tensor_storage(deepseek):
    params = sum(p.numel() * p.element_size() for p in deepseek.model.parameters())
    assert params <= deepseek.memory_bytes <= params * 1.05


def test_hub_id_offline_fails_fast_with_a_clear_message(hardware):
    entry = default_catalog().get("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")
    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match="not reachable"):
        load_model(entry, Precision.FP32, hardware)
    assert time.perf_counter() - start < 10


def test_fp16_is_refused_on_cpu(hardware):
    if hardware.device != "cpu":
        pytest.skip("CPU-only rule")
    with pytest.raises(UnsupportedPrecisionError, match="fp16 is not available on cpu"):
        load_model(default_catalog().get(TEXT_MODEL), Precision.FP16, hardware)
