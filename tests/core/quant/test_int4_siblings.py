"""q, k and v in one int4 kernel call: the same outputs as three calls, in a module and in a whole bundled model."""

import copy
import threading

import pytest
import torch
from torch import nn
from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig
from torchao.quantization import quantize_

from core.quant.int4_linear import Int4PackedLinear, call_int4_directly
from core.quant.int4_siblings import Int4SiblingLinear, share_sibling_products
from tests.conftest import DENSE_MODEL


def attention(widths: tuple[int, int, int], bias: bool) -> nn.Module:
    torch.manual_seed(0)
    module = nn.Module()
    for name, width in zip(("q_proj", "k_proj", "v_proj"), widths, strict=True):
        setattr(module, name, nn.Linear(256, width, bias=bias, dtype=torch.bfloat16))
    quantize_(module, PrototypeInt4WeightOnlyConfig(group_size=128))
    call_int4_directly(module)
    return module


def shared_copy(widths: tuple[int, int, int], bias: bool) -> tuple[nn.Module, nn.Module, torch.Tensor, torch.Tensor]:
    """Separate projections, a copy sharing one product, and two inputs."""
    separate = attention(widths, bias)
    shared = copy.deepcopy(separate)
    assert share_sibling_products(shared) == 1
    return separate, shared, torch.randn(3, 256, dtype=torch.bfloat16), torch.randn(3, 256, dtype=torch.bfloat16)


def projections(module: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.inference_mode():
        return [module.q_proj(x), module.k_proj(x), module.v_proj(x)]


@pytest.mark.parametrize("bias", [True, False])
def test_one_call_gives_each_projection_exactly(bias):
    separate, shared, _, _ = shared_copy((192, 64, 64), bias)
    assert all(type(getattr(shared, n)) is Int4SiblingLinear for n in ("q_proj", "k_proj", "v_proj"))
    for x in (torch.randn(1, 1, 256, dtype=torch.bfloat16), torch.randn(2, 7, 256, dtype=torch.bfloat16)):
        for a, b in zip(projections(shared, x), projections(separate, x), strict=True):
            assert torch.equal(a, b)
    assert shared.q_proj.product.last.x is None  # every sibling took its columns: nothing is held


def test_each_projection_alone_and_its_own_weight_stay_right():
    separate, shared, x, y = shared_copy((128, 64, 64), bias=True)
    with torch.inference_mode():
        assert torch.equal(shared.k_proj(x), separate.k_proj(x))  # no product for x yet
        assert torch.equal(shared.v_proj(y), separate.v_proj(y))  # another input: a new product
        shared.k_proj.__class__ = nn.Linear  # torchao's own linear on the module's weight (a view of the rows)
        assert torch.equal(shared.k_proj(x), separate.k_proj(x))


def test_threads_keep_their_own_products():
    separate, shared, x, y = shared_copy((128, 64, 64), bias=False)
    with torch.inference_mode():
        q = shared.q_proj(x)  # this thread's product is for x
        other: list[torch.Tensor] = []
        thread = threading.Thread(target=lambda: other.extend(projections(shared, y)))
        thread.start()
        thread.join()
        assert torch.equal(q, separate.q_proj(x)) and torch.equal(shared.k_proj(x), separate.k_proj(x))
    for a, b in zip(other, projections(separate, y), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("widths", [(208, 48, 48), (192, 64, 32)])
def test_widths_outside_whole_packing_blocks_are_left_alone(widths):
    module = attention(widths, bias=False)
    assert share_sibling_products(module) == 0 and type(module.k_proj) is Int4PackedLinear


def test_a_bundled_int4_model_shares_them_and_predicts_the_same(registry, hardware):
    if hardware.device != "cpu":
        pytest.skip("CPU int4 only")
    model = registry.get(DENSE_MODEL, "int4").model
    siblings = [m for m in model.modules() if type(m) is Int4SiblingLinear]
    assert len(siblings) == 3 * model.config.num_hidden_layers
    ids = torch.tensor([[1, 20, 31, 45, 7, 99, 12]])
    with torch.inference_mode():
        joined = model(ids).logits
        for module in siblings:
            module.__class__ = Int4PackedLinear
        try:
            apart = model(ids).logits
        finally:
            for module in siblings:
                module.__class__ = Int4SiblingLinear
    assert torch.equal(joined, apart)
