"""One-token CPU attention as matmuls: the same answer as transformers' sdpa, also with padding and shared heads."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from core.models import decode_attention
from core.serving.batch_state import prefill


class Heads(nn.Module):
    num_key_value_groups = 3
    is_causal = True


def reference(query, key, value, mask, scaling):
    return sdpa_attention_forward(Heads(), query, key, value, mask, scaling=scaling)[0]


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
@pytest.mark.parametrize("length", [9, decode_attention.SHORT_CONTEXT + 7])  # float32 matmuls, then the model's dtype
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_one_token_matches_sdpa_with_grouped_heads_and_padding(mask_kind, length, dtype):
    torch.manual_seed(0)
    # explicit float32: transformers sets torch's process-wide default dtype while a model loads, and a load still
    # running on another thread once made these bf16 (a full run failed so)
    f32 = torch.float32
    query, key, value = (torch.randn(2, 6, 1, 16, dtype=f32), torch.randn(2, 2, length, 16, dtype=f32),
                         torch.randn(2, 2, length, 12, dtype=f32))
    keep = torch.ones(2, 1, 1, length, dtype=torch.bool)
    keep[1, ..., :4] = False  # the second row is left-padded
    mask = {"none": None, "bool": keep,
            "float": torch.zeros(2, 1, 1, length, dtype=f32).masked_fill(~keep, float("-inf"))}[mask_kind]
    got, weights = decode_attention.attention(Heads(), query.to(dtype), key.to(dtype), value.to(dtype), mask,
                                              scaling=0.3)
    assert weights is None and got.shape == (2, 1, 6, 12) and got.dtype == dtype
    expected = reference(*(t.to(dtype).float() for t in (query, key, value)), mask, 0.3)  # the same inputs, in fp32
    assert torch.allclose(got.float(), expected, atol=1e-5 if dtype == torch.float32 else 2e-2)


def test_several_query_tokens_go_to_transformers_own_sdpa():
    torch.manual_seed(0)
    query, key, value = torch.randn(1, 6, 4, 16), torch.randn(1, 2, 4, 16), torch.randn(1, 2, 4, 16)
    got, _ = decode_attention.attention(Heads(), query, key, value, None, scaling=0.25)
    assert torch.equal(got, reference(query, key, value, None, 0.25))


@pytest.mark.parametrize("fixture", ["deepseek", "qwen"])
def test_a_padded_batch_decodes_as_with_transformers_sdpa(fixture, request):
    loaded = request.getfixturevalue(fixture)
    prompts = [loaded.tokenizer(t)["input_ids"] for t in ("Explain loops in Python.", "Hi")]

    def next_logits() -> torch.Tensor:
        with torch.inference_mode():
            state, logits = prefill(loaded.model, prompts, [0, 1], 0, "cpu")
            state.next_ids = logits.argmax(-1)
            return state.step(loaded.model)

    ours = next_logits()
    AttentionInterface.register("sdpa", sdpa_attention_forward)
    try:
        theirs = next_logits()
    finally:
        decode_attention.install()
    assert AttentionInterface._global_mapping["sdpa"] is decode_attention.attention
    assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4)
