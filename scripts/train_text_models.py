"""Train the bundled tiny text checkpoints (DeepseekV3 MoE+MLA and Qwen2) offline, seeded.

Usage: python scripts/train_text_models.py [--only deepseek-v3-tiny|qwen2-tiny] [--steps N]
       [--out assets/models] [--seed 1234]
Also writes assets/text/reference.txt, assets/text/calibration.txt and assets/docs/*.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import (
    DeepseekV3Config,
    DeepseekV3ForCausalLM,
    GenerationConfig,
    PreTrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # so `python scripts/train_text_models.py` can import `scripts.*`

from scripts import text_checks, text_corpus, text_tokenizer  # noqa: E402

VOCAB_SIZE = 3000
HELDOUT_FRACTION = 0.05
REFERENCE_MAX_TOKENS = 4000
MAX_POSITIONS = 32768


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser and batching settings shared by both models."""

    steps: int
    batch_size: int = 8  # beat 16 at equal wall time on this CPU
    block_size: int = 256
    lr: float = 3e-3
    warmup_steps: int = 20
    weight_decay: float = 0.1
    seed: int = 1234


@dataclass(frozen=True)
class Corpus:
    """Tokenizer plus token streams and the texts written to assets/text."""

    tokenizer: PreTrainedTokenizerFast
    train_ids: torch.Tensor  # (n_train,) packed training stream
    heldout_ids: torch.Tensor  # (n_heldout,) held-out sections, starting with bos
    reference_ids: torch.Tensor  # (n_ref,) reference.txt as the model sees it
    reference_text: str
    calibration: list[str]


def deepseek_v3_config(tokenizer: PreTrainedTokenizerFast) -> DeepseekV3Config:
    """Tiny DeepseekV3: MLA attention, 8 routed experts (top-2) plus a shared one, yarn rope."""
    # qk head dim (nope 16 + rope 16) equals v_head_dim: SDPA then takes torch's CPU flash kernel,
    # O(n) memory; with 48 vs 32 it falls back to the math kernel (20K tokens: 11.5 GB, minutes).
    return DeepseekV3Config(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=4, first_k_dense_replace=1,
        q_lora_rank=64, kv_lora_rank=32, qk_rope_head_dim=16, qk_nope_head_dim=16,
        v_head_dim=32, n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2,
        n_group=2, topk_group=1, moe_intermediate_size=64, num_mtp_layers=0,
        max_position_embeddings=MAX_POSITIONS,
        rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 8.0,
                         "original_max_position_embeddings": 4096, "beta_fast": 32.0,
                         "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0},
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )


def qwen2_config(tokenizer: PreTrainedTokenizerFast) -> Qwen2Config:
    """Tiny dense Qwen2 with grouped-query attention, standing in for R1-Distill-Qwen."""
    return Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=384, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=MAX_POSITIONS,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )


@dataclass(frozen=True)
class ModelSpec:
    """How to build one bundled model, and its default step count (~3-4 min on one thread)."""

    model_class: type[PreTrainedModel]
    make_config: Callable[[PreTrainedTokenizerFast], PreTrainedConfig]
    steps: int


MODELS: dict[str, ModelSpec] = {
    "deepseek-v3-tiny": ModelSpec(DeepseekV3ForCausalLM, deepseek_v3_config, steps=400),
    "qwen2-tiny": ModelSpec(Qwen2ForCausalLM, qwen2_config, steps=450),
}


def _encode(tokenizer: PreTrainedTokenizerFast, text: str, bos: bool = True) -> list[int]:
    """Token ids of `text`, with or without the leading bos."""
    return tokenizer(text, add_special_tokens=bos, verbose=False)["input_ids"]


def _reference(tokenizer: PreTrainedTokenizerFast, sections: list[text_corpus.Section]) -> str:
    """Held-out paragraphs, in order, cut at a paragraph so the text stays under the token cap."""
    paragraphs = [p for s in sections for p in (s.heading, *s.paragraphs)]
    kept: list[str] = []
    for paragraph in paragraphs:
        if len(_encode(tokenizer, "\n\n".join(kept + [paragraph]))) > REFERENCE_MAX_TOKENS:
            break
        kept.append(paragraph)
    return "\n\n".join(kept) + "\n"


def build_corpus(seed: int) -> Corpus:
    """Split pydoc topics, train the tokenizer on the train split, tokenize every stream."""
    split = text_corpus.split_sections(text_corpus.load_sections(), seed, HELDOUT_FRACTION)
    docs = text_corpus.documents(split.train)
    chats = text_corpus.chat_samples(split.train, seed)
    tokenizer = text_tokenizer.train_tokenizer(
        docs + [m["content"] for chat in chats for m in chat], VOCAB_SIZE)
    eos = tokenizer.eos_token_id
    samples = [_encode(tokenizer, d) + [eos] for d in docs]
    samples += [_encode(tokenizer, tokenizer.apply_chat_template(c, tokenize=False), bos=False)
                for c in chats]
    random.Random(seed).shuffle(samples)
    heldout_text = "\n\n".join(s.text() for s in split.heldout)
    reference_text = _reference(tokenizer, split.heldout)
    return Corpus(
        tokenizer=tokenizer,
        train_ids=torch.tensor([i for sample in samples for i in sample]),
        heldout_ids=torch.tensor(_encode(tokenizer, heldout_text) + [eos]),
        reference_ids=torch.tensor(_encode(tokenizer, reference_text)),
        reference_text=reference_text,
        calibration=text_corpus.calibration_passages(split.train, seed),
    )


def _lr_at(step: int, s: TrainSettings) -> float:
    """Linear warmup then cosine decay to a tenth of the peak."""
    if step < s.warmup_steps:
        return s.lr * (step + 1) / s.warmup_steps
    progress = (step - s.warmup_steps) / max(1, s.steps - s.warmup_steps)
    return s.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


def train(model: PreTrainedModel, ids: torch.Tensor, s: TrainSettings) -> tuple[float, float]:
    """Train on random windows of the packed stream; return (wall, process CPU) seconds."""
    generator = torch.Generator().manual_seed(s.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=s.lr, betas=(0.9, 0.95),
                                  weight_decay=s.weight_decay)
    model.train()
    start, cpu_start = time.perf_counter(), time.process_time()
    for step in range(s.steps):
        starts = torch.randint(0, len(ids) - s.block_size - 1, (s.batch_size,),
                               generator=generator)
        batch = torch.stack([ids[i:i + s.block_size] for i in starts.tolist()])
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, s)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 25 == 0 or step == s.steps - 1:
            print(f"  step {step:4d}  loss {loss.item():.3f}  "
                  f"{time.perf_counter() - start:6.1f}s", flush=True)
    model.eval()
    return time.perf_counter() - start, time.process_time() - cpu_start


@torch.no_grad()
def perplexity(model: PreTrainedModel, ids: torch.Tensor, block_size: int) -> float:
    """Perplexity over every token after the first, in non-overlapping windows."""
    total, count = 0.0, 0
    for i in range(0, len(ids) - 1, block_size):
        window = ids[i:i + block_size + 1].unsqueeze(0)  # (1, <= block+1)
        logits = model(input_ids=window[:, :-1]).logits
        nll = torch.nn.functional.cross_entropy(logits[0], window[0, 1:], reduction="sum")
        total, count = total + nll.item(), count + window.shape[1] - 1
    return math.exp(total / count)


def unigram_perplexity(train_ids: torch.Tensor, ids: torch.Tensor, vocab: int) -> float:
    """Perplexity of an add-one unigram model fitted on train, scored on ids[1:]."""
    counts = torch.bincount(train_ids, minlength=vocab).double() + 1.0
    log_probs = torch.log(counts / counts.sum())
    return math.exp(-log_probs[ids[1:]].mean().item())


def write_text_assets(corpus: Corpus, root: Path) -> dict[str, int]:
    """Write reference.txt, calibration.txt and the two long documents; return word counts."""
    text_dir = root / "assets" / "text"
    text_dir.mkdir(parents=True, exist_ok=True)
    (text_dir / "reference.txt").write_text(corpus.reference_text, encoding="utf-8")
    (text_dir / "calibration.txt").write_text("\n\n".join(corpus.calibration) + "\n",
                                              encoding="utf-8")
    return text_corpus.write_long_documents(root / "assets" / "docs")


def build_model(name: str, corpus: Corpus, s: TrainSettings) -> PreTrainedModel:
    """Seeded fresh model of the named family, trained on the corpus."""
    spec = MODELS[name]
    torch.manual_seed(s.seed)
    model = spec.model_class(spec.make_config(corpus.tokenizer))
    model.generation_config = GenerationConfig(
        bos_token_id=corpus.tokenizer.bos_token_id, eos_token_id=corpus.tokenizer.eos_token_id,
        pad_token_id=corpus.tokenizer.pad_token_id, do_sample=False, max_new_tokens=256)
    return model


def run_model(name: str, corpus: Corpus, s: TrainSettings, out_dir: Path,
              long_context: int) -> dict[str, object]:
    """Train, evaluate, save and check one model; return its training report."""
    print(f"== {name}", flush=True)
    model = build_model(name, corpus, s)
    params = sum(p.numel() for p in model.parameters())
    print(f"  parameters {params:,}", flush=True)
    seconds, cpu_seconds = train(model, corpus.train_ids, s)
    vocab = len(corpus.tokenizer)
    report: dict[str, object] = {
        "model": name, "architecture": type(model).__name__, "parameters": params,
        "train_seconds": round(seconds, 1), "train_cpu_seconds": round(cpu_seconds, 1),
        "train_tokens_seen": s.steps * s.batch_size * s.block_size,
        "train_stream_tokens": len(corpus.train_ids), "heldout_tokens": len(corpus.heldout_ids),
        "heldout_ppl": round(perplexity(model, corpus.heldout_ids, s.block_size), 2),
        "unigram_ppl": round(unigram_perplexity(corpus.train_ids, corpus.heldout_ids, vocab), 2),
        "reference_ppl": round(perplexity(model, corpus.reference_ids, s.block_size), 2),
        "reference_tokens": len(corpus.reference_ids), "vocab_size": vocab,
        "seed": s.seed, "settings": asdict(s), "corpus": text_corpus.DESCRIPTION,
    }
    report["heldout_over_unigram"] = round(report["heldout_ppl"] / report["unigram_ppl"], 3)
    path = out_dir / name
    model.save_pretrained(path)
    corpus.tokenizer.save_pretrained(path)
    report.update(text_checks.check_checkpoint(
        path, model, corpus.tokenizer, corpus.reference_text, long_context))
    report["size_bytes"] = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    (path / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    for key in ("parameters", "train_seconds", "train_cpu_seconds", "heldout_ppl", "unigram_ppl",
                "heldout_over_unigram", "reference_ppl", "size_bytes"):
        print(f"  {key}: {report[key]}")
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(MODELS), help="train just this model")
    parser.add_argument("--steps", type=int, help="optimizer steps per model (default: per model)")
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "models")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--long-context", type=int, default=20000,
                        help="tokens for the long-context forward check (0 skips it)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Build the corpus and text assets, then train and save the selected models."""
    args = parse_args(argv)
    torch.set_num_threads(1)  # shared 2-core machine
    torch.use_deterministic_algorithms(True)
    corpus = build_corpus(args.seed)
    words = write_text_assets(corpus, ROOT)
    print(f"corpus: {len(corpus.train_ids):,} train tokens, {len(corpus.heldout_ids):,} held-out, "
          f"reference {len(corpus.reference_ids):,}, docs {words}", flush=True)
    for name in [args.only] if args.only else list(MODELS):
        settings = TrainSettings(steps=args.steps or MODELS[name].steps, seed=args.seed)
        run_model(name, corpus, settings, args.out, args.long_context)


if __name__ == "__main__":
    main()
