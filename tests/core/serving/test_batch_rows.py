"""Rows leaving and joining a running batch at known steps: the scheduler's steps driven by hand, no thread timing.

Each row's token limit decides the step at which it leaves, so a row leaves from the front, the middle or the
end of the batch exactly when the test says; every row's token ids must equal a single greedy `generate`.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import Qwen2Config

from core.serving.batch_state import cache_is_plain, prefill
from core.serving.batching import Batcher, _eos_ids
from tests.core.serving.batch_driver import drive, generate_ids, greedy, inputs_for, make_row, one_thread  # noqa: F401

TEXTS = ["Explain the assert statement.", "Loops", "The with statement", "Write about loops.", "Explain classes.",
         "The while loop"]  # none ends on eos within 24 greedy tokens on either bundled model



@pytest.mark.parametrize("fixture", ["deepseek", "qwen"])
def test_rows_leaving_from_the_front_the_middle_and_the_end_keep_their_single_request_tokens(fixture, request):
    loaded = request.getfixturevalue(fixture)
    texts = TEXTS[:4]
    limits = [4, 20, 9, 14]  # row 0 leaves first (front), then row 2 (middle), then row 3 (end); row 1 stays
    expected = [generate_ids(loaded, t, greedy(n)) for t, n in zip(texts, limits, strict=True)]
    assert [len(e) for e in expected] == limits, "a row ended on eos: it would not leave at the planned step"
    rows = [make_row(loaded, t, greedy(n)) for t, n in zip(texts, limits, strict=True)]
    sizes = drive(Batcher(loaded), rows)
    assert sorted(set(sizes), reverse=True) == [4, 3, 2, 1] and sizes == sorted(sizes, reverse=True)  # one at a time
    assert [r.streamer.ids for r in rows] == expected
    assert all(r.released.is_set() for r in rows)


@pytest.mark.parametrize("fixture", ["deepseek", "qwen"])
def test_rows_joining_a_batch_that_lost_its_front_row_keep_their_single_request_tokens(fixture, request):
    loaded = request.getfixturevalue(fixture)
    plan = [(TEXTS[0], 3), (TEXTS[3], 16)]  # the front row leaves after 3 tokens
    late = [(TEXTS[4], 10), (TEXTS[5], 6)]  # join before steps 5 and 7, into caches of other widths
    expected = [generate_ids(loaded, t, greedy(n)) for t, n in plan + late]
    assert [len(e) for e in expected] == [n for _, n in plan + late]
    rows = [make_row(loaded, t, greedy(n)) for t, n in plan]
    joined = [make_row(loaded, t, greedy(n)) for t, n in late]
    sizes = drive(Batcher(loaded), rows, {5: [joined[0]], 7: [joined[1]]})
    assert max(sizes) == 3
    assert [r.streamer.ids for r in rows + joined] == expected


@pytest.mark.parametrize("fixture", ["deepseek", "qwen"])
def test_stop_on_the_front_row_frees_it_and_the_others_keep_their_single_request_tokens(fixture, request):
    loaded = request.getfixturevalue(fixture)
    rows = [make_row(loaded, t, greedy(12)) for t in TEXTS[:3]]
    rows[0].streamer.stop_after = (3, rows[0].stop)
    sizes = drive(Batcher(loaded), rows)
    expected = [generate_ids(loaded, t, greedy(12)) for t in TEXTS[:3]]
    assert rows[0].streamer.ids == expected[0][:3] and rows[0].released.is_set()
    assert [r.streamer.ids for r in rows[1:]] == expected[1:]
    assert sizes[:2] == [3, 2]  # the stopped row left at the step after its Stop


@pytest.mark.parametrize("fixture", ["deepseek", "qwen"])
def test_a_row_ends_on_any_eos_id_its_generation_config_lists(fixture, request, monkeypatch):
    """Chat models often list several (Qwen2.5: <|im_end|> and <|endoftext|>); generate stops on each, so must a row."""
    loaded = request.getfixturevalue(fixture)
    free = generate_ids(loaded, TEXTS[0], greedy(12))
    k = next(i for i in range(2, 12) if free[i] not in free[:i])  # a token that first appears at step k
    monkeypatch.setattr(loaded.model.generation_config, "eos_token_id", [loaded.tokenizer.eos_token_id, free[k]])
    expected = generate_ids(loaded, TEXTS[0], greedy(12))
    assert expected == free[:k + 1]  # generate ends on it
    rows = [make_row(loaded, TEXTS[0], greedy(12)), make_row(loaded, TEXTS[1], greedy(12))]
    sizes = drive(Batcher(loaded), rows)
    assert rows[0].streamer.ids == expected and rows[1].streamer.ids == generate_ids(loaded, TEXTS[1], greedy(12))
    assert sizes[k - 2:k] == [2, 1]  # sizes[j]: rows left after token j + 1; it left as soon as it gave its eos


def test_eos_ids_are_the_generation_configs_and_the_tokenizers(deepseek, monkeypatch):
    tokenizer_eos = deepseek.tokenizer.eos_token_id
    for listed, expected in (([5, 7], {5, 7}), (7, {7}), (None, set())):
        monkeypatch.setattr(deepseek.model.generation_config, "eos_token_id", listed)
        assert _eos_ids(deepseek) == expected | {tokenizer_eos}


def test_keep_takes_the_cache_rows_of_the_kept_rows_and_drops_the_padding_only_the_others_needed(deepseek):
    """BatchState.keep([1, 2]) must continue exactly as a batch prefilled with only those prompts."""
    texts = ("What is a list comprehension and when is it a good idea?", TEXTS[0], TEXTS[1])  # row 0 the longest
    prompts = [inputs_for(deepseek, t)["input_ids"][0].tolist() for t in texts]
    pad = deepseek.tokenizer.eos_token_id
    with torch.inference_mode():
        full, logits = prefill(deepseek.model, prompts, ["a", "b", "c"], pad, "cpu")
        full.next_ids = logits.argmax(-1)
        full.keep([1, 2])
        alone, alone_logits = prefill(deepseek.model, prompts[1:], ["b", "c"], pad, "cpu")
        alone.next_ids = alone_logits.argmax(-1)
        assert full.rows == ["b", "c"] and torch.equal(full.next_ids, alone.next_ids)
        assert torch.equal(full.mask, alone.mask) and torch.equal(full.positions, alone.positions)
        assert full.mask.shape[1] == len(prompts[1]) < len(prompts[0])  # the columns only row 0 needed are gone
        torch.testing.assert_close(full.step(deepseek.model), alone.step(deepseek.model), atol=1e-4, rtol=1e-4)


def test_only_caches_of_plain_full_attention_layers_are_batched(deepseek, qwen):
    """A sliding-window cache drops old columns on its own; keep() and extend() would misalign it."""
    sliding = Qwen2Config(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                          intermediate_size=64, vocab_size=100, use_sliding_window=True, sliding_window=16,
                          max_window_layers=0)
    assert cache_is_plain(deepseek.model) and cache_is_plain(qwen.model)
    assert not cache_is_plain(SimpleNamespace(config=sliding))
