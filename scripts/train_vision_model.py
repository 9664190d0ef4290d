"""Train the bundled tiny DeepSeek-VL checkpoint on synthetic shape images, from scratch, seeded.

    python scripts/train_vision_model.py [--steps N] [--out DIR] [--seed S]

Builds a byte-level BPE tokenizer on the caption/question vocabulary, a DeepseekVLProcessor with
DeepSeek-VL's chat template, and a 1.45M-parameter DeepseekVLForConditionalGeneration (SigLIP
vision tower + Llama text model). Images come from two generators: the grid drawings of
scripts/shapes.py and, for --varied-share of them, scripts/shape_variety.py (aspect ratios 1:2 to 2:1,
shapes up to most of the image anywhere, white/plain/dark backgrounds, hue ranges per colour word,
outlines, noise, JPEG). Stage 1 pretrains the vision tower on the scene attributes of varied drawings
(--vision-varied-share; the rest grid drawings), lone shapes starting on the model's patch corners and moving
freely by --jitter-ramp steps (a position curriculum: this ViT learns patch-aligned shapes far sooner), with a
per-token loss naming the shape that reaches into each patch (--vision-dense-weight), and, as drawing costs
more than a step of the tower, --vision-fresh new images per batch and the rest from a pool of mirrored recent
ones; stage 2 trains the whole model (the vision tower at --vision-lr-factor of the rate) on chats about
freshly drawn images until the validation captions reach --target (exact match on grid drawings, colour and
shape on varied ones). Saves model + processor in the standard HF layout with training_report.json (held-out
accuracy, CPU seconds, every argument), and example images. Deterministic for a seed with one thread;
scripts/vision_goals.py scores the result on issue 15's goals.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import deque
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # so `python scripts/train_vision_model.py` can import `scripts.*`

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import (  # noqa: E402
    DeepseekVLConfig,
    DeepseekVLForConditionalGeneration,
    DeepseekVLImageProcessorPil,
    DeepseekVLProcessor,
    LlamaConfig,
    PreTrainedTokenizerFast,
    SiglipVisionConfig,
)

from scripts.shape_variety import Layout, Variety, random_varied_scene, varied_layout  # noqa: E402
from scripts.shapes import (  # noqa: E402
    ATTRIBUTE_VALUES,
    CAPTION_PROMPTS,
    QUESTIONS,
    ShapeScene,
    caption,
    conversation,
    draw_scene,
    question,
    random_scene,
)
from scripts.vision_eval import DRAW_SIDES, evaluate_captions, evaluate_varied  # noqa: E402

IMAGE_SIZE, PATCH_SIZE = 64, 16  # default input side; (side / patch)^2 image placeholders per image
BOS, EOS, IMAGE = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<image_placeholder>"
# DeepSeek-VL's template (deepseek-community/deepseek-vl-1.3b-chat) minus its fixed system prompt,
# which would be a third of every training sequence: a system message, if given, is rendered first.
CHAT_TEMPLATE = (
    "{% set seps = ['\n\n', '" + EOS + "'] %}"
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
    "{{ (system if system is string else system[0]['text']) + '\n\n' }}{% endif %}"
    "{% for message in messages if message['role'] != 'system' %}{% if message['role']|lower == 'user' %}User: "
    "{% elif message['role']|lower == 'assistant' %}Assistant:{% if not (loop.last and not add_generation_prompt "
    "and message['content'][0]['type']=='text' and message['content'][0]['text']=='') %} {% endif %}"
    "{% else %}{{ message['role'].capitalize() }}: {% endif %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}" + IMAGE +
    "{% elif content['type'] == 'text' %}{% set text = content['text'] %}"
    "{% if loop.first %}{% set text = text.lstrip() %}{% endif %}"
    "{% if loop.last %}{% set text = text.rstrip() %}{% endif %}"
    "{% if not loop.first and message['content'][loop.index0-1]['type'] == 'text' %}{{ ' ' + text }}"
    "{% else %}{{ text }}{% endif %}{% endif %}{% endfor %}"
    "{% if not loop.last or add_generation_prompt %}{% if message['role']|lower == 'user' %}{{ seps[0] }}"
    "{% else %}{{ seps[1] }}{% endif %}{% endif %}{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
TRAIN_SEED_STREAM, VAL_SEED, TEST_SEED, PRETRAIN_SEED_STREAM = 0, 1, 2, 3  # offsets added to --seed


def _corpus(seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = ["User: Assistant:"] * 50 + [p for ps in CAPTION_PROMPTS.values() for p in ps]
    for _ in range(3000):
        scene = random_scene(rng)
        texts += [caption(scene, "short"), caption(scene, "detailed")]
        texts += [" ".join(question(scene, a)) for a in QUESTIONS]
    return texts


def build_tokenizer(seed: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE (no unknown tokens) trained on the caption and question vocabulary."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=768, special_tokens=[BOS, EOS, IMAGE],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(_corpus(seed), trainer=trainer)
    bpe.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bpe.token_to_id(BOS))])
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=BOS, eos_token=EOS, pad_token=EOS, padding_side="left",
        extra_special_tokens={"image_token": IMAGE}, model_max_length=512)


def build_processor(tokenizer: PreTrainedTokenizerFast, image_size: int = IMAGE_SIZE,
                    patch_size: int = PATCH_SIZE) -> DeepseekVLProcessor:
    image_processor = DeepseekVLImageProcessorPil(size={"height": image_size, "width": image_size})
    return DeepseekVLProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE,
                               num_image_tokens=(image_size // patch_size) ** 2)


VISION_TOWER = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 3, "num_attention_heads": 4}
LANGUAGE_MODEL = {"hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 4}


def build_model(tokenizer: PreTrainedTokenizerFast, image_size: int = IMAGE_SIZE, patch_size: int = PATCH_SIZE,
                tower: dict[str, int] | None = None,
                language: dict[str, int] | None = None) -> DeepseekVLForConditionalGeneration:
    """SigLIP vision tower (VISION_TOWER, updated by `tower`) + Llama (LANGUAGE_MODEL, updated by `language`),
    about 1.45M parameters by default."""
    vision = SiglipVisionConfig(**{**VISION_TOWER, **(tower or {})}, image_size=image_size, patch_size=patch_size,
                                vision_use_head=False)
    text = LlamaConfig(vocab_size=len(tokenizer), **{**LANGUAGE_MODEL, **(language or {})},
                       num_attention_heads=4, num_key_value_heads=4,
                       max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                       tie_word_embeddings=True)
    config = DeepseekVLConfig(text_config=text, vision_config=vision,
                              image_token_id=tokenizer.convert_tokens_to_ids(IMAGE))
    model = DeepseekVLForConditionalGeneration(config)
    model.generation_config.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                   pad_token_id=tokenizer.pad_token_id, max_new_tokens=64, do_sample=False)
    return model


def encode_chat(processor: DeepseekVLProcessor, messages: list[dict]) -> tuple[list[int], list[int]]:
    """Token ids of a whole chat and labels that keep only the assistant replies (and their EOS)."""
    text = processor.apply_chat_template(messages) + EOS
    text = text.replace(IMAGE, IMAGE * processor.num_image_tokens)  # what the processor does before tokenizing
    spans, pos = [], 0
    for reply in messages[1::2]:
        answer = " " + reply["content"][0]["text"] + EOS
        start = text.index("Assistant:" + answer, pos) + len("Assistant:")
        pos = start + len(answer)
        spans.append((start, pos))
    enc = processor.tokenizer(text, return_offsets_mapping=True)
    labels = [tok if any(s <= a < b <= e for s, e in spans) else -100
              for tok, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=False)]
    return enc["input_ids"], labels


def training_sample(rng: random.Random, varied_share: float, jitter: float = 1.0, lone: float = 0.3,
                    plain: float = 0.3, variety: Variety = Variety()) -> tuple[ShapeScene, Image.Image]:
    """A fresh scene and its image: the grid drawing of scripts/shapes.py or, with probability varied_share,
    a varied one (scripts/shape_variety.py; jitter < 1 pulls lone shapes toward patch corners; `lone` and
    `plain` as in random_varied_scene; `variety` as in varied_layout). Even draw seeds: never held out."""
    scene, image, _ = training_layout(rng, varied_share, jitter, lone, plain, variety)
    return scene, image


def training_layout(rng: random.Random, varied_share: float, jitter: float = 1.0, lone: float = 0.3,
                    plain: float = 0.3, variety: Variety = Variety()) -> tuple[ShapeScene, Image.Image, Layout | None]:
    """training_sample, and the layout of a varied drawing (None for a grid one)."""
    if rng.random() < varied_share:
        image, scene, layout = varied_layout(random_varied_scene(rng, lone, plain), 2 * rng.getrandbits(31), jitter,
                                             variety=variety)
        return scene, image, layout
    scene = random_scene(rng)
    return scene, draw_scene(scene, rng.choice(DRAW_SIDES), 2 * rng.getrandbits(31)), None


_MIRRORED = {"left": "right", "right": "left"}
NO_SHAPE, IGNORED = len(ATTRIBUTE_VALUES["shape"]), -100  # dense labels: shape index, or background, or unknown


def dense_labels(layout: Layout | None, shape: str, grid: int) -> torch.Tensor:
    """Per image token (row by row): the scene's shape index where a shape reaches into the patch, NO_SHAPE
    where none does, IGNORED everywhere for a grid drawing (no layout)."""
    if layout is None:
        return torch.full((grid * grid,), IGNORED)
    index = ATTRIBUTE_VALUES["shape"].index(shape)
    return torch.tensor([index if hit else NO_SHAPE for row in layout.patch_map(grid) for hit in row])


class ImageStream:
    """Stage 1's images as pixel tensors, with dense_labels. With `fresh`, each batch draws that many new images
    and fills the rest from a pool of the last `pool` ones, each mirrored left-right half the time (a lone
    shape's left and right swap); drawing costs more than a step of the tower, so this fits more steps in the
    same time."""

    def __init__(self, processor: DeepseekVLProcessor, rng: random.Random, args: argparse.Namespace):
        self.processor, self.rng, self.args = processor, rng, args
        self.grid = round(processor.num_image_tokens ** 0.5)
        self.pool: deque[tuple[ShapeScene, torch.Tensor, torch.Tensor]] = deque(maxlen=max(1, args.vision_pool))

    def _draw(self, n: int, jitter: float) -> tuple[list[ShapeScene], torch.Tensor, torch.Tensor]:
        a = self.args
        scenes, images, layouts = zip(*(training_layout(self.rng, a.vision_varied_share, jitter, a.vision_lone_share,
                                                        a.vision_plain_share, variety(a)) for _ in range(n)),
                                      strict=True)
        dense = torch.stack([dense_labels(lay, s.shape, self.grid) for s, lay in zip(scenes, layouts, strict=True)])
        return list(scenes), self.processor.image_processor(images, return_tensors="pt")["pixel_values"], dense

    def batch(self, size: int, jitter: float) -> tuple[list[ShapeScene], torch.Tensor, torch.Tensor]:
        """`size` scenes, their pixels (batch, 3, side, side) and dense labels (batch, tokens)."""
        if not self.args.vision_fresh:
            return self._draw(size, jitter)
        new = list(zip(*self._draw(min(size, self.args.vision_fresh), jitter), strict=True))
        self.pool.extend(new)
        picked = [*new, *(self.rng.choice(self.pool) for _ in range(size - len(new)))]
        scenes, pixels, dense = [], [], []
        for scene, image, labels in picked:
            if self.rng.random() < 0.5:
                scene = replace(scene, position=_MIRRORED.get(scene.position, scene.position))
                image, labels = image.flip(-1), labels.view(self.grid, self.grid).flip(-1).reshape(-1)
            scenes.append(scene)
            pixels.append(image)
            dense.append(labels)
        return scenes, torch.stack(pixels), torch.stack(dense)


def variety(args: argparse.Namespace) -> Variety:
    """The varied drawings' dark, outline and thin-outline settings from the command line (defaults without)."""
    return Variety(getattr(args, "dark_share", 0.2), getattr(args, "outline_share", 0.3),
                   getattr(args, "thin_outlines", False))


def training_batch(processor: DeepseekVLProcessor, rng: random.Random, size: int, varied_share: float,
                   style: Variety = Variety()) -> tuple[dict[str, torch.Tensor], list[ShapeScene]]:
    """A right-padded batch of freshly drawn images and chats, and the scenes they show."""
    images, ids, labels, scenes = [], [], [], []
    for _ in range(size):
        scene, image = training_sample(rng, varied_share, variety=style)
        images.append(image)
        scenes.append(scene)
        tokens, targets = encode_chat(processor, conversation(scene, rng))
        ids.append(tokens)
        labels.append(targets)
    width = max(map(len, ids))
    pad = processor.tokenizer.pad_token_id
    return {
        "input_ids": torch.tensor([t + [pad] * (width - len(t)) for t in ids]),  # (batch, seq)
        "attention_mask": torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in ids]),
        "labels": torch.tensor([t + [-100] * (width - len(t)) for t in labels]),
        "pixel_values": processor.image_processor(images, return_tensors="pt")["pixel_values"],
    }, scenes


def attribute_heads(model, processor, dense: bool = False) -> torch.nn.ModuleDict:
    """Throwaway linear heads, one per scene attribute on all image tokens ("slots") and on their mean, and
    with `dense` one on each token for its dense_labels.

    Per-slot heads learn fast; heads on the token mean push every token to carry the whole scene, so the LM
    can read it with any attention pattern; the dense head tells each token which shape reaches into its patch.
    """
    hidden = model.config.text_config.hidden_size
    heads = torch.nn.ModuleDict({f"{pool}_{a}": torch.nn.Linear(
        hidden * (processor.num_image_tokens if pool == "slots" else 1), len(v))
        for a, v in ATTRIBUTE_VALUES.items() for pool in ("slots", "mean")})
    if dense:
        heads["dense"] = torch.nn.Linear(hidden, NO_SHAPE + 1)
    return heads


def attribute_loss(heads: torch.nn.ModuleDict, tokens: torch.Tensor, scenes: list[ShapeScene],
                   dense: torch.Tensor | None = None, dense_weight: float = 0.0, shape_weight: float = 1.0,
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    """Summed cross-entropy of every head on image tokens (batch, tokens, hidden), the dense head's weighted by
    `dense_weight` and the shape heads' by `shape_weight`; the mean heads' accuracy."""
    pooled = {"slots": tokens.flatten(1), "mean": tokens.mean(1)}
    losses, hits = [], {}
    if dense_weight and dense is not None and (dense != IGNORED).any():
        logits = heads["dense"](tokens).flatten(0, 1)
        losses.append(dense_weight * torch.nn.functional.cross_entropy(logits, dense.flatten(), ignore_index=IGNORED))
    for attribute, values in ATTRIBUTE_VALUES.items():
        target = torch.tensor([values.index(getattr(s, attribute)) for s in scenes])
        for pool, features in pooled.items():
            logits = heads[f"{pool}_{attribute}"](features)
            loss = torch.nn.functional.cross_entropy(logits, target)
            losses.append(shape_weight * loss if attribute == "shape" and shape_weight != 1.0 else loss)
        hits[attribute] = round((logits.argmax(-1) == target).float().mean().item(), 2)  # mean head
    return sum(losses), hits  # type: ignore[return-value]


def pretrain_vision(model, processor, args) -> tuple[dict, torch.nn.ModuleDict]:
    """Stage 1: fit the vision tower + aligner to the scene attributes through throwaway linear heads.

    Real DeepSeek-VL starts from a pretrained SigLIP; this is the tiny stand-in. A from-scratch LM
    learns to read image tokens far faster once those tokens already carry the attributes.
    """
    rng = random.Random(args.seed + PRETRAIN_SEED_STREAM)
    heads = attribute_heads(model, processor, dense=bool(args.vision_dense_weight))
    params = [*model.model.vision_model.parameters(), *model.model.aligner.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(params, lr=args.vision_lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(  # warmup, then linear decay to a tenth
        optimizer, lambda s: min(1.0, (s + 1) / 50) * max(0.1, 1.0 - s / args.vision_steps))
    start, stream = time.time(), ImageStream(processor, rng, args)
    for step in range(1, args.vision_steps + 1):
        jitter = min(1.0, step / args.jitter_ramp) if args.jitter_ramp else 1.0  # position curriculum
        scenes, pixels, dense = stream.batch(args.vision_batch_size, jitter)
        loss, hits = attribute_loss(heads, model.model.get_image_features(pixels).pooler_output, scenes, dense,
                                    args.vision_dense_weight, args.vision_shape_weight)
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0:
            print(f"vision step {step:4d}  batch accuracy {hits}  {time.time() - start:6.1f}s", flush=True)
    return {"vision_steps": args.vision_steps, "vision_seconds": round(time.time() - start, 1)}, heads


def train(model, processor, args, heads: torch.nn.ModuleDict) -> dict:
    """AdamW with warmup + cosine decay; stops early once validation captions reach the target.

    With --aux-weight, stage 1's heads keep reading the image tokens of each batch: their loss, so weighted,
    is added to the language model's, so the tower keeps (and goes on learning) the scene attributes.
    """
    rng = random.Random(args.seed + TRAIN_SEED_STREAM)
    vision = list(model.model.vision_model.parameters())  # pretrained in stage 1: a gentler rate keeps its features
    rest = [p for p in model.parameters() if all(p is not v for v in vision)]
    rest += list(heads.parameters()) if args.aux_weight else []
    optimizer = torch.optim.AdamW([{"params": rest}, {"params": vision, "lr": args.lr * args.vision_lr_factor}],
                                  lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = 50
    def schedule(s: int) -> float:
        return min(1.0, (s + 1) / warmup) * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * s / args.steps)).item())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    start, history = time.time(), []
    for step in range(1, args.steps + 1):
        model.train()
        batch, scenes = training_batch(processor, rng, args.batch_size, args.varied_share, variety(args))
        loss = model(**batch).loss
        if args.aux_weight:
            tokens = model.model.get_image_features(batch["pixel_values"]).pooler_output
            loss = loss + args.aux_weight * attribute_loss(heads, tokens, scenes)[0]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 25 == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}  {time.time() - start:6.1f}s", flush=True)
        if step % args.eval_every == 0 or step == args.steps:
            model.eval()
            val = evaluate_captions(model, processor, n=100, seed=args.seed + VAL_SEED, followups=False)
            varied = evaluate_varied(model, processor, n=100, seed=args.seed + VAL_SEED)
            history.append({"step": step, "loss": round(loss.item(), 4), "exact_match": val["exact_match"],
                            "varied_colour": varied["colour"], "varied_shape": varied["shape"]})
            print(f"  validation exact match {val['exact_match']:.2f}  {val['per_attribute']}  varied {varied}",
                  flush=True)
            if min(val["exact_match"], varied["colour"], varied["shape"]) >= args.target:
                break
    return {"steps": step, "train_seconds": round(time.time() - start, 1), "history": history}


STAGE1_ARGS = ("seed", "vision_steps", "vision_varied_share", "vision_lone_share", "vision_plain_share",
               "vision_batch_size", "vision_fresh", "vision_pool", "jitter_ramp", "vision_lr", "image_size",
               "patch_size", "vision_width", "vision_mlp", "vision_layers", "vision_dense_weight",
               "vision_shape_weight", "dark_share", "outline_share", "thin_outlines")


STAGE1_PARTS = ("model.vision_model.", "model.aligner.")  # what stage 1 trains


def cached_stage1(model, processor, args) -> tuple[dict, torch.nn.ModuleDict, float]:
    """pretrain_vision, or its saved result from --stage1-cache when run with the same stage-1 arguments (to try
    stage-2 settings faster, or another language model: only the tower and aligner are loaded, though the heads'
    start then differs from a fresh run's; the saved run's CPU seconds still count). Returns (report, heads, cached
    CPU s)."""
    key = {k: getattr(args, k) for k in STAGE1_ARGS}
    path = args.stage1_cache
    if path is not None and path.exists():
        saved = torch.load(path, weights_only=False)
        if saved["key"] == key:
            trained = {k: v for k, v in saved["model"].items() if k.startswith(STAGE1_PARTS)}
            model.load_state_dict(trained, strict=False)
            heads = attribute_heads(model, processor, dense=bool(args.vision_dense_weight))
            heads.load_state_dict(saved["heads"])
            print(f"stage 1 from {path} ({saved['cpu']:.0f} CPU-s)", flush=True)
            return saved["report"], heads, saved["cpu"]
    cpu = time.process_time()
    report, heads = pretrain_vision(model, processor, args)
    if path is not None:
        torch.save({"key": key, "model": model.state_dict(), "heads": heads.state_dict(), "report": report,
                    "cpu": time.process_time() - cpu}, path)
    return report, heads, 0.0


def save_examples(folder: Path, seed: int) -> list[str]:
    """Four example PNGs named by content, e.g. large_red_circle_left.png."""
    scenes = [ShapeScene("circle", "red", "large", 1, "left", "plain"),
              ShapeScene("triangle", "blue", "small", 2, None, "gradient"),
              ShapeScene("square", "green", "large", 1, "center", "noise"),
              ShapeScene("diamond", "orange", "small", 3, None, "plain")]
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, s in enumerate(scenes):
        where = s.position or f"x{s.count}"
        name = f"{s.size}_{s.colour}_{s.shape}_{where}.png"
        draw_scene(s, 128, 2 * (seed + i) + 1).save(folder / name, optimize=True)
        names.append(name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1350, help="maximum stage-2 optimizer steps")
    parser.add_argument("--out", type=Path, default=ROOT / "assets/models/deepseek-vl-tiny")
    parser.add_argument("--images", type=Path, default=ROOT / "assets/images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16, help="stage 2's batch size")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--vision-steps", type=int, default=8500, help="stage-1 vision pretraining steps")
    parser.add_argument("--vision-varied-share", type=float, default=0.7,
                        help="stage 1's share of images drawn by scripts/shape_variety.py")
    parser.add_argument("--vision-lone-share", type=float, default=0.3,
                        help="stage 1: share of varied scenes made a lone shape (on top of a third by chance)")
    parser.add_argument("--vision-plain-share", type=float, default=0.3,
                        help="stage 1: share of varied scenes put on a plain background (on top of a third by chance)")
    parser.add_argument("--vision-batch-size", type=int, default=32)
    parser.add_argument("--vision-dense-weight", type=float, default=1.0,
                        help="stage 1: weight of a per-token loss naming the shape that reaches into each patch")
    parser.add_argument("--vision-shape-weight", type=float, default=1.0,
                        help="stage 1: weight of the shape heads' loss (the others weigh 1)")
    parser.add_argument("--vision-fresh", type=int, default=8,
                        help="stage 1: new images per batch, the rest from a pool of recent ones (0: all new)")
    parser.add_argument("--vision-pool", type=int, default=4096, help="stage 1: images kept for --vision-fresh")
    parser.add_argument("--jitter-ramp", type=int, default=4250,
                        help="stage-1 steps over which lone varied shapes move from patch corners to anywhere")
    parser.add_argument("--vision-lr-factor", type=float, default=0.3,
                        help="stage 2's learning rate for the vision tower, relative to --lr")
    parser.add_argument("--image-size", type=int, default=IMAGE_SIZE, help="the model's input side in pixels")
    parser.add_argument("--patch-size", type=int, default=PATCH_SIZE, help="the vision tower's patch side in pixels")
    parser.add_argument("--varied-share", type=float, default=0.5,
                        help="share of training images drawn by scripts/shape_variety.py")
    parser.add_argument("--vision-lr", type=float, default=2e-3)
    parser.add_argument("--dark-share", type=float, default=0.2, help="share of varied plain backgrounds that are dark")
    parser.add_argument("--outline-share", type=float, default=0.3, help="share of varied drawings with outlines")
    parser.add_argument("--thin-outlines", action="store_true", help="varied outlines down to 1 px")
    parser.add_argument("--vision-width", type=int, default=VISION_TOWER["hidden_size"])
    parser.add_argument("--vision-mlp", type=int, default=VISION_TOWER["intermediate_size"])
    parser.add_argument("--vision-layers", type=int, default=VISION_TOWER["num_hidden_layers"])
    parser.add_argument("--text-layers", type=int, default=LANGUAGE_MODEL["num_hidden_layers"])
    parser.add_argument("--text-mlp", type=int, default=LANGUAGE_MODEL["intermediate_size"])
    parser.add_argument("--stage1-cache", type=Path, default=None,
                        help="save stage 1's result here, or reuse it if saved with the same stage-1 arguments")
    parser.add_argument("--aux-weight", type=float, default=0.0,
                        help="stage 2: weight of stage 1's attribute loss on the image tokens (0: off)")
    parser.add_argument("--eval-every", type=int, default=450)
    parser.add_argument("--target", type=float, default=0.95, help="validation exact match to stop at")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    tokenizer = build_tokenizer(args.seed)
    processor = build_processor(tokenizer, args.image_size, args.patch_size)
    model = build_model(tokenizer, args.image_size, args.patch_size, {"hidden_size": args.vision_width,
                        "intermediate_size": args.vision_mlp, "num_hidden_layers": args.vision_layers},
                        {"intermediate_size": args.text_mlp, "num_hidden_layers": args.text_layers})
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params / 1e6:.2f}M parameters, vocab {len(tokenizer)}, image token id {model.config.image_token_id}")

    wall, cpu = time.time(), time.process_time()
    stage1, heads, cached_cpu = cached_stage1(model, processor, args)
    run = {**stage1, **train(model, processor, args, heads)}
    run.update(total_wall_seconds=round(time.time() - wall, 1),
               total_cpu_seconds=round(time.process_time() - cpu + cached_cpu, 1))
    model.eval()
    test = evaluate_captions(model, processor, n=200, seed=args.seed + TEST_SEED)
    model.save_pretrained(args.out)
    processor.save_pretrained(args.out)
    report = {"seed": args.seed, "parameters": n_params, "image_size": args.image_size, "patch_size": args.patch_size,
              "num_image_tokens": processor.num_image_tokens, "image_token_id": model.config.image_token_id,
              "batch_size": args.batch_size, "lr": args.lr,
              "arguments": {k: v for k, v in vars(args).items() if k not in ("out", "images", "stage1_cache")},
              **run, "heldout": test}
    (args.out / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    report["examples_saved"] = save_examples(args.images, args.seed)
    print(json.dumps({k: report[k] for k in ("steps", "train_seconds", "heldout", "examples_saved")}, indent=2))


if __name__ == "__main__":
    main()
