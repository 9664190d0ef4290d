from pathlib import Path

import pytest

from core.quant.quality import compare_logits, greedy_agreement, perplexity


def test_identical_models_agree_fully(deepseek):
    ids = deepseek.tokenizer(Path("assets/text/reference.txt").read_text(), return_tensors="pt").input_ids[0][:300]
    same = compare_logits(deepseek.model, deepseek.model, ids, block_size=128)
    assert same.kl_mean == pytest.approx(0, abs=1e-6)
    assert same.top1_agreement == 1 and same.perplexity_change == pytest.approx(0, abs=1e-9)
    assert same.perplexity == pytest.approx(perplexity(deepseek.model, ids, block_size=128), rel=1e-5)
    assert same.tokens == 299


def test_greedy_agreement_is_one_for_the_models_own_greedy_answer_and_lower_for_another(deepseek):
    prompt = deepseek.tokenizer.encode("The while statement")
    own = deepseek.model.generate(deepseek.tokenizer("The while statement", return_tensors="pt").input_ids,
                                  max_new_tokens=12, do_sample=False)[0, len(prompt):].tolist()
    assert greedy_agreement(deepseek.model, prompt, own) == 1.0
    other = [(t + 7) % 3000 for t in own]
    assert greedy_agreement(deepseek.model, prompt, other) < 0.5
