
import math

import pytest
import torch

from core.paths import REFERENCE_TEXT
from core.quant.divergence import Estimate, compare_models, divergence, reference_log_probs, summarize, windows
from tests.conftest import TEXT_MODEL

REFERENCE = REFERENCE_TEXT


@pytest.fixture(scope="module")
def ids(deepseek) -> torch.Tensor:
    return deepseek.tokenizer(REFERENCE.read_text(), return_tensors="pt").input_ids[0]


def test_windows_score_each_token_once_with_half_a_window_of_context():
    scored: list[int] = []
    for start, first, end in windows(1000, 128, max_scored=2048):
        assert first - start == 64 and end - start <= 128
        scored += range(first, end)
    assert scored == list(range(64, 1000))  # each position once, in order, none in the first half-window


def test_windows_stop_once_enough_tokens_are_scored():
    assert sum(end - first for _, first, end in windows(10_000, 128, max_scored=300)) == 300


def test_a_model_against_itself_has_no_divergence(deepseek, ids):
    result = compare_models(deepseek.model, deepseek.model, ids, window=256, max_scored=512)
    assert result.tokens == 512
    assert result.kl_mean.value < 1e-6 and result.kl_quantiles["max"] < 1e-5
    assert result.same_top.value == 1.0 and abs(result.delta_p_mean.value) < 1e-6
    assert result.perplexity_ratio.value == pytest.approx(1.0, abs=1e-6) and result.perplexity_within_noise


def test_4bit_diverges_more_than_8bit_beyond_noise(registry, deepseek, ids):
    reference = reference_log_probs(deepseek.model, ids, window=128, max_scored=512)
    int8 = divergence(reference, registry.get(TEXT_MODEL, "int8").model, ids, window=128)
    int4 = divergence(reference, registry.get(TEXT_MODEL, "int4").model, ids, window=128)
    assert int8.tokens == int4.tokens == 512
    assert not int4.kl_mean.within_noise_of(int8.kl_mean) and int4.kl_mean.value > int8.kl_mean.value
    assert int4.same_top.value < int8.same_top.value <= 1.0
    assert int4.delta_p_rms.value > int8.delta_p_rms.value > 0
    q = int4.kl_quantiles
    assert 0 <= q["median"] <= q["p90"] <= q["p99"] <= q["p99.9"] <= q["max"]
    assert q["max"] > int4.kl_mean.value  # the tail llama.cpp prints, beyond the mean


def test_statistics_match_their_definitions():
    # 4 tokens: candidate nll = reference nll + [0.1, 0.3, 0.1, 0.3] (mean 0.2, sd 0.1155)
    nll_ref = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    stats = torch.stack([nll_ref, nll_ref + torch.tensor([0.1, 0.3, 0.1, 0.3], dtype=torch.float64),
                         torch.tensor([0.0, 0.1, 0.2, 0.3], dtype=torch.float64),
                         torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64),
                         torch.full((4,), 0.5, dtype=torch.float64),
                         torch.tensor([0.4, 0.6, 0.4, 0.6], dtype=torch.float64)], dim=1)
    result = summarize(stats, window=8)
    assert result.perplexity_ratio.value == pytest.approx(math.exp(0.2))
    assert result.perplexity_ratio.error == pytest.approx(result.perplexity_ratio.value * 0.11547 / 2, rel=1e-3)
    assert result.kl_mean.value == pytest.approx(0.15) and result.kl_quantiles["max"] == pytest.approx(0.3)
    assert result.same_top.value == 0.75 and result.same_top.error == pytest.approx((0.75 * 0.25 / 4) ** 0.5)
    assert result.delta_p_mean.value == pytest.approx(0.0, abs=1e-7)
    assert result.delta_p_rms.value == pytest.approx(0.1)
    assert not result.perplexity_within_noise  # +22 % with a standard error of ~6 %


def test_within_noise_uses_both_standard_errors():
    assert Estimate(1.0, 0.1).within_noise_of(Estimate(1.25, 0.1))  # 0.25 < 2 * 0.141
    assert not Estimate(1.0, 0.1).within_noise_of(Estimate(1.3, 0.1))
    assert Estimate(1.005, 0.005).within_noise_of(1.0) and not Estimate(1.02, 0.005).within_noise_of(1.0)


def test_too_short_a_text_is_a_clear_error(deepseek):
    with pytest.raises(ValueError, match="needs at least"):
        reference_log_probs(deepseek.model, torch.tensor([1, 2, 3]), window=256)

