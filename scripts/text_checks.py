"""Checks run on each saved tiny text checkpoint: reload, greedy chat, long-context forward."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

CHAT_PROMPTS = (
    "Explain the assert statement.",
    "What does the 'for' statement do?",
    "Tell me about the \"break\" statement.",  # a held-out section
)
TEXT_PROMPT = "A list is"
REPETITION_PENALTIES = (1.0, 1.3)  # plain greedy loops on models this small; 1.3 reads well


def _reload(path: Path) -> tuple[PreTrainedModel, AutoTokenizer]:
    """Load the checkpoint the way the app does: Auto classes, no remote code."""
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model.eval(), tokenizer


@torch.no_grad()
def chat_sample(model: PreTrainedModel, tokenizer: AutoTokenizer, question: str,
                repetition_penalty: float = 1.0, max_new_tokens: int = 120) -> tuple[str, bool]:
    """Greedy answer to one user turn; True when the model ended it with eos."""
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True,
        return_tensors="pt", return_dict=True)
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                         repetition_penalty=repetition_penalty)
    new = out[0, inputs["input_ids"].shape[1]:]
    stopped = bool((new == tokenizer.eos_token_id).any())
    return tokenizer.decode(new, skip_special_tokens=True), stopped


@torch.no_grad()
def text_sample(model: PreTrainedModel, tokenizer: AutoTokenizer, prompt: str) -> str:
    """Greedy 40-token continuation of plain text."""
    inputs = tokenizer(prompt, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=40, do_sample=False)
    return tokenizer.decode(out[0], skip_special_tokens=True)


@torch.no_grad()
def long_context_seconds(model: PreTrainedModel, n_tokens: int, vocab: int) -> float:
    """Seconds for one forward pass over `n_tokens` random tokens (no cache)."""
    ids = torch.randint(4, vocab, (1, n_tokens), generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    logits = model(input_ids=ids, use_cache=False, logits_to_keep=1).logits
    assert torch.isfinite(logits).all(), "non-finite logits on long input"
    return time.perf_counter() - start


@torch.no_grad()
def check_checkpoint(path: Path, trained: PreTrainedModel, trained_tokenizer: AutoTokenizer,
                     probe_text: str, long_context_tokens: int) -> dict[str, object]:
    """Reload `path`, compare with what was trained, sample, and time a long forward."""
    model, tokenizer = _reload(path)
    assert len(tokenizer) == model.config.vocab_size, f"{len(tokenizer)} tokens after reload"
    assert tokenizer(probe_text)["input_ids"] == trained_tokenizer(probe_text)["input_ids"], \
        f"{type(tokenizer).__name__} encodes differently from the trained tokenizer"
    probe = tokenizer("The value of an object", return_tensors="pt")["input_ids"]
    diff = (model(input_ids=probe).logits - trained(input_ids=probe).logits).abs().max().item()
    assert diff < 1e-4, f"reloaded logits differ by {diff}"
    samples = []
    for question in CHAT_PROMPTS:
        for penalty in REPETITION_PENALTIES:
            answer, stopped = chat_sample(model, tokenizer, question, penalty)
            samples.append({"user": question, "repetition_penalty": penalty,
                            "assistant": answer, "stopped_with_eos": stopped})
            print(f"  [chat rp={penalty}] {question!r} -> {answer!r} (eos: {stopped})", flush=True)
    continuation = text_sample(model, tokenizer, TEXT_PROMPT)
    print(f"  [text] {continuation!r}", flush=True)
    report: dict[str, object] = {"reload_max_logit_diff": diff, "chat_samples": samples,
                                 "text_sample": continuation,
                                 "special_token_ids": {
                                     "bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id,
                                     "pad": tokenizer.pad_token_id,
                                     "user": tokenizer.convert_tokens_to_ids("<｜User｜>"),
                                     "assistant": tokenizer.convert_tokens_to_ids(
                                         "<｜Assistant｜>")}}
    if long_context_tokens:
        seconds = long_context_seconds(model, long_context_tokens, len(tokenizer))
        print(f"  [long] {long_context_tokens} tokens forward in {seconds:.1f}s", flush=True)
        report["long_context_forward"] = {"tokens": long_context_tokens,
                                          "seconds": round(seconds, 1)}
    return report
