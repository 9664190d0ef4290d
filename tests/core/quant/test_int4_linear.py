"""Int4PackedLinear calls ATen's int4 kernel itself: the same outputs as torchao's linear, on every CPU int4 load."""

import copy

import pytest
import torch
from torch import nn
from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig
from torchao.quantization import quantize_

from core.quant.int4_linear import Int4PackedLinear, call_int4_directly
from tests.conftest import DENSE_MODEL, TEXT_MODEL


@pytest.mark.parametrize("bias", [True, False])
def test_it_gives_torchaos_outputs_exactly(bias):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 208, bias=bias, dtype=torch.bfloat16))
    quantize_(model, PrototypeInt4WeightOnlyConfig(group_size=128))
    direct = copy.deepcopy(model)
    assert call_int4_directly(direct) == 1 and type(direct[0]) is Int4PackedLinear
    x = torch.randn(3, 5, 256, dtype=torch.bfloat16)
    with torch.inference_mode():
        assert torch.equal(direct(x), model(x))


def test_other_linears_are_left_alone():
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8, dtype=torch.bfloat16))
    assert call_int4_directly(model) == 0 and all(type(m) is nn.Linear for m in model)


@pytest.mark.parametrize("model_id", [TEXT_MODEL, DENSE_MODEL])
def test_cpu_int4_loads_call_the_kernel_directly(registry, hardware, model_id):
    if hardware.device != "cpu":
        pytest.skip("CPU int4 only")
    model = registry.get(model_id, "int4").model
    int4 = [m for m in model.modules() if type(getattr(m, "weight", None)).__name__ == "Int4OpaqueTensor"]
    assert int4 and all(isinstance(m, Int4PackedLinear) for m in int4)  # q, k, v: Int4SiblingLinear
