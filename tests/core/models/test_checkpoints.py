"""The bundled text checkpoints write text, not noise: perplexity far below a unigram baseline."""

import math
from collections import Counter

import pytest
import torch

from core.paths import ASSETS
from core.quant.quality import perplexity


def unigram_perplexity(train_ids: list[int], eval_ids: list[int], vocab: int) -> float:
    counts = Counter(train_ids)
    total = len(train_ids) + vocab  # add-one smoothing
    nll = -sum(math.log((counts[i] + 1) / total) for i in eval_ids)
    return math.exp(nll / len(eval_ids))


@pytest.mark.parametrize("fixture", ["deepseek", "qwen"])
def test_heldout_perplexity_is_well_below_unigram(request, fixture):
    loaded = request.getfixturevalue(fixture)
    tok = loaded.tokenizer
    reference = tok((ASSETS / "text" / "reference.txt").read_text(), add_special_tokens=False)["input_ids"]
    train = tok((ASSETS / "text" / "calibration.txt").read_text(), add_special_tokens=False)["input_ids"]
    model_ppl = perplexity(loaded.model, torch.tensor(reference))
    baseline = unigram_perplexity(train, reference, len(tok))
    assert model_ppl < 0.35 * baseline, f"model {model_ppl:.1f} vs unigram {baseline:.1f}"


def test_sampled_chat_answer_is_mostly_words(deepseek):
    torch.manual_seed(0)
    tok = deepseek.tokenizer
    text = tok.apply_chat_template([{"role": "user", "content": "What is a list?"}], tokenize=False,
                                   add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    out = deepseek.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=60, do_sample=True,
                                  temperature=0.7, top_k=50)
    answer = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert len(answer.split()) >= 5 and sum(c.isalpha() for c in answer) > 0.6 * len(answer.replace(" ", ""))
