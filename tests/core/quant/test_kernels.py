import copy

import torch

from core.models.catalog import default_catalog
from core.models.hardware import Precision
from core.quant import fbgemm_int8, kernels
from core.quant.backends import BACKENDS, available_precisions, kernel_of
from core.quant.kernels import HEAD_INT8, head_kernel, int4_group, unfit_layers
from tests.conftest import DENSE_MODEL, TEXT_MODEL


def test_every_quantized_precision_has_a_kernel_and_a_reason_where_it_runs():
    for precision, backend in BACKENDS.items():
        if not precision.quantized:
            assert not backend.kernels
            continue
        assert set(backend.kernels) == set(backend.devices)
        assert all(k.reason and k.name for k in backend.kernels.values())


def test_cuda_kernels_are_marked_untested_and_cpu_kernels_tested():
    for precision in BACKENDS:
        cuda, cpu = kernel_of(precision, "cuda"), kernel_of(precision, "cpu")
        assert cuda is None or not cuda.tested  # no GPU here: chosen from the libraries' docs only
        assert cpu is None or cpu.tested


def test_cpu_int4_and_int8_use_packed_kernels_with_bf16_activations(hardware):
    assert kernel_of(Precision.INT4, "cpu").compute_dtype == torch.bfloat16
    assert "_weight_int4pack_mm_for_cpu" in kernel_of(Precision.INT4, "cpu").name
    assert "_weight_int8pack_mm" in kernel_of(Precision.INT8, "cpu").name
    assert kernel_of(Precision.GPTQ_INT4, "cpu").gptq_backend == "gptq_torch_aten"


def test_int4_group_is_the_largest_that_fits_and_misfits_stay_unquantized():
    real = {"q_proj": 1536, "down_proj": 8960, "gate_proj": 1536}  # R1-Distill-Qwen-1.5B widths
    assert int4_group(real) == 128 and unfit_layers(real, 128) == []
    tiny = {"kv_b_proj": 32, "o_proj": 128, "down_proj": 64}  # the bundled DeepseekV3
    assert int4_group(tiny) == 32 and unfit_layers(tiny, 32) == []
    odd = {"a": 128, "b": 256, "c": 100}  # 100 is divisible by no group
    assert int4_group(odd) == 128 and unfit_layers(odd, 128) == ["c"]


def test_dense_int4_quantizes_while_loading_with_the_tables_kernel(registry):
    loaded = registry.get(DENSE_MODEL, "int4")
    weight = loaded.model.model.layers[0].mlp.down_proj.weight
    assert type(weight).__name__ == "Int4OpaqueTensor" and loaded.dtype == "bfloat16"
    assert loaded.kernel.startswith(kernel_of(Precision.INT4, "cpu").name) and loaded.unfit_layers == 0
    assert type(loaded.model.lm_head).__name__ == "Int8DynamicLinear"  # the untied lm_head: int8, not bf16


def test_only_cpu_int4_gives_the_head_its_own_int8_kernel():
    multiply = "FBGEMM" if fbgemm_int8.available() else "torch._int_mm"
    assert head_kernel("int4", "cpu") is HEAD_INT8 and multiply in HEAD_INT8.name
    assert head_kernel("int4", "cuda") is None and head_kernel("int8", "cpu") is None


def test_the_picker_still_offers_int8_and_int4_for_moe_models(hardware):
    offered = available_precisions(default_catalog().get(TEXT_MODEL), hardware)
    assert {Precision.INT8, Precision.INT4} <= set(offered)


def test_int8_quantized_in_row_chunks_equals_quantos_whole_weight_freeze(monkeypatch):
    from optimum.quanto import qint8
    from optimum.quanto.nn import quantize_module

    linear = torch.nn.Linear(64, 1000, bias=False, dtype=torch.bfloat16)
    whole = quantize_module(copy.deepcopy(linear), weights=qint8)
    whole.freeze()
    monkeypatch.setattr(kernels, "QUANTIZE_CHUNK_BYTES", 37 * 64 * 2)  # 37 rows a chunk, the last one short
    chunked = kernels.quantize_linear(linear, "int8", "cpu", 64)
    assert torch.equal(chunked.weight._data, whole.weight._data) and torch.equal(chunked.weight._scale,
                                                                                   whole.weight._scale)
    x = torch.randn(2, 64, dtype=torch.bfloat16)
    with torch.inference_mode():
        assert torch.equal(chunked(x), whole(x))
