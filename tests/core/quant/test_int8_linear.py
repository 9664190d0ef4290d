"""Int8DynamicLinear, CPU int4's lm_head: int8 rows x int8 activations per token, rescaled (FBGEMM or torch._int_mm)."""

import pytest
import torch
from torch import nn

from core.quant import fbgemm_int8
from core.quant.int8_linear import Int8DynamicLinear
from core.quant.weights import weight_report

needs_fbgemm = pytest.mark.skipif(not fbgemm_int8.available(), reason="this torch build has no FBGEMM")


@pytest.fixture
def linear() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(96, 1000, bias=True)


@pytest.fixture
def plain_int_mm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Int8DynamicLinear as built where torch has no FBGEMM: plain int8 rows through torch._int_mm."""
    monkeypatch.setattr(fbgemm_int8, "available", lambda: False)


def test_rows_quantized_in_chunks_equal_the_whole_weight_at_once(linear: nn.Linear, plain_int_mm: None) -> None:
    whole = Int8DynamicLinear.from_linear(linear, chunk_bytes=2**30)
    chunked = Int8DynamicLinear.from_linear(linear, chunk_bytes=37 * 96 * 4)  # 37 rows a chunk, the last one short
    assert whole.packed is None and torch.equal(whole.weight, chunked.weight)
    assert torch.equal(whole.scale, chunked.scale)
    assert whole.weight.dtype == torch.int8 and int(whole.weight.abs().max()) == 127  # each row spans the range


@needs_fbgemm
def test_packed_in_pieces_gives_the_whole_packs_outputs(linear: nn.Linear) -> None:
    whole = Int8DynamicLinear.from_linear(linear, chunk_bytes=2**30)
    pieces = Int8DynamicLinear.from_linear(linear, chunk_bytes=37 * 96 * 4, piece_bytes=300 * 96)  # 4 pieces
    assert len(whole.packed) == 1 and len(pieces.packed) == 4 and torch.equal(whole.scale, pieces.scale)
    assert whole.weight.device.type == "meta" and whole.weight.dtype == torch.int8  # FBGEMM holds the rows
    x = torch.randn(3, 96)
    with torch.inference_mode():
        assert torch.equal(whole(x), pieces(x))


@needs_fbgemm
def test_a_token_gets_the_same_logits_alone_and_in_any_batch(linear: nn.Linear) -> None:
    head = Int8DynamicLinear.from_linear(linear, chunk_bytes=2**20)
    torch.manual_seed(1)
    token, others = torch.randn(1, 96), torch.randn(5, 96) * torch.tensor([[0.01], [1], [30], [-4], [0]])
    with torch.inference_mode():
        alone, batched = head(token), head(torch.cat([others[:2], token, others[2:]]))
    assert torch.equal(alone[0], batched[2])


@needs_fbgemm
def test_fbgemm_and_int_mm_agree_within_int8_rounding(linear: nn.Linear, monkeypatch: pytest.MonkeyPatch) -> None:
    packed = Int8DynamicLinear.from_linear(linear, chunk_bytes=2**20)
    monkeypatch.setattr(fbgemm_int8, "available", lambda: False)
    plain = Int8DynamicLinear.from_linear(linear, chunk_bytes=2**20)
    x = torch.randn(4, 96)
    with torch.inference_mode():
        a, b = packed(x), plain(x)
    assert torch.equal(packed.scale, plain.scale) and float((a - b).norm() / b.norm()) < 0.01
    assert torch.equal(packed.state_dict()["weight"], plain.weight)  # the packed rows, unpacked for a state dict


@pytest.mark.parametrize("multiply", ["fbgemm", "int_mm"])
def test_it_computes_the_linear_within_int8_rounding(linear: nn.Linear, multiply: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if multiply == "int_mm":
        monkeypatch.setattr(fbgemm_int8, "available", lambda: False)
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
