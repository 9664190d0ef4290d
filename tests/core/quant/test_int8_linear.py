"""Int8DynamicLinear, CPU int4's lm_head: int8 rows x int8 activations per token, rescaled."""

import pytest
import torch
from torch import nn

from core.quant.int8_linear import Int8DynamicLinear
from core.quant.weights import weight_report


@pytest.fixture
def linear() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(96, 1000, bias=True)


def test_rows_quantized_in_chunks_equal_the_whole_weight_at_once(linear: nn.Linear) -> None:
    whole = Int8DynamicLinear.from_linear(linear, chunk_bytes=2**30)
    chunked = Int8DynamicLinear.from_linear(linear, chunk_bytes=37 * 96 * 4)  # 37 rows a chunk, the last one short
    assert torch.equal(whole.weight, chunked.weight) and torch.equal(whole.scale, chunked.scale)
    assert whole.weight.dtype == torch.int8 and int(whole.weight.abs().max()) == 127  # each row spans the range


def test_it_computes_the_linear_within_int8_rounding(linear: nn.Linear) -> None:
    head = Int8DynamicLinear.from_linear(linear, chunk_bytes=2**20)
    x = torch.randn(2, 5, 96)
    with torch.inference_mode():
        exact, got = linear(x), head(x)
    assert got.shape == exact.shape == (2, 5, 1000)
    assert float((got - exact).norm() / exact.norm()) < 0.01
    assert torch.equal(got.argmax(-1), exact.argmax(-1)) or float((got - exact).abs().max()) < 0.05


def test_bf16_in_bf16_out_and_a_zero_token_gives_the_bias(linear: nn.Linear) -> None:
    head = Int8DynamicLinear.from_linear(linear, chunk_bytes=2**20)
    x = torch.zeros(3, 96, dtype=torch.bfloat16)
    x[1] = torch.randn(96)
    with torch.inference_mode():
        out = head(x)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    assert torch.allclose(out[0].float(), linear.bias.detach(), atol=1e-2)  # no 0/0 for an all-zero token


def test_the_weight_report_counts_it_as_8_bit_with_its_scales(linear: nn.Linear) -> None:
    model = nn.Module()
    model.lm_head = Int8DynamicLinear.from_linear(linear, chunk_bytes=2**20)
    report = weight_report(model)
    assert report.stored_as() == ("lm_head int8",)
    assert report.quantized_bytes == 1000 * 96 + 1000 * 4  # int8 rows + one float32 scale per row
