"""Dense models quantized layer by layer while their safetensors are read (the load peak of issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from core.models.catalog import default_catalog
from core.models.hardware import Precision
from core.models.loading import load_with
from core.quant import loaders, streaming
from core.quant.backends import kernel_of
from core.quant.kernels import quantize_head
from core.quant.weights import weight_report
from tests.conftest import DENSE_MODEL

IDS = torch.tensor([[5, 17, 300, 42, 9, 1200, 77, 8, 640, 3, 2500, 19]])


@pytest.mark.parametrize("precision", [Precision.INT8, Precision.INT4])
def test_streamed_quantization_gives_transformers_numbers_and_quantizes_the_same_layers(hardware, precision):
    if hardware.device != "cpu":
        pytest.skip("the streaming loader serves the CPU")
    entry, kernel = default_catalog().get(DENSE_MODEL), kernel_of(precision, "cpu")
    group, skip = loaders._plan(precision, loaders.linear_in_features(loaders._meta_model(entry)))
    streamed = loaders._load_streamed(entry, precision, hardware, kernel, skip, group)
    reference = load_with(entry, precision, hardware, loaders._dense_kwargs(precision, hardware, kernel, skip, group),
                          backend=kernel.library)
    quantize_head(reference.model, precision.value, "cpu")  # transformers' path: the head after the load
    assert streamed is not None
    assert not any(p.is_meta for p in streamed.model.state_dict().values())  # a packed head gives its rows here
    with torch.inference_mode():
        assert torch.equal(streamed.model(IDS).logits, reference.model(IDS).logits)
    ours, theirs = weight_report(streamed.model), weight_report(reference.model)
    assert (ours.quantized_params, ours.quantized_bytes) == (theirs.quantized_params, theirs.quantized_bytes)
    # the streamed load quantized the head as it arrived: int8 under int4, full precision under int8
    head = "lm_head int8" if precision == Precision.INT4 else None
    assert ours.quantized_share > 0.3 and ours.stored_as() == theirs.stored_as()
    assert (head in ours.stored_as()) if head else ("lm_head" in ours.full_precision_parts)


def test_a_float32_tensor_is_read_in_row_chunks_straight_into_bf16(tmp_path: Path, monkeypatch):
    weight = torch.randn(37, 8)
    save_file({"w": weight, "b": torch.randn(8)}, tmp_path / "model.safetensors")
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 3 * 8 * 4)  # three rows a read: 13 reads, the last one short
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as handle:
        out, bias = (streaming.read_chunked(handle, key, torch.bfloat16) for key in ("w", "b"))
    assert out.dtype == bias.dtype == torch.bfloat16 and torch.equal(out, weight.to(torch.bfloat16))


def test_a_checkpoint_whose_names_need_conversion_falls_back_to_transformers(tmp_path: Path):
    folder = Path(default_catalog().get(DENSE_MODEL).source)
    for name in ("config.json",):
        (tmp_path / name).write_text((folder / name).read_text())
    save_file({"renamed.weight": torch.zeros(2, 2)}, tmp_path / "model.safetensors")
    assert streaming.load_streaming(tmp_path, torch.bfloat16, lambda *_: None, []) is None
