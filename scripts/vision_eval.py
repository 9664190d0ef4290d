"""Score a DeepSeek-VL model on held-out shape images through the same pipeline an app uses.

apply_chat_template -> processor(images, text) -> greedy generate -> decode -> parse_attributes.
"""

from __future__ import annotations

import random

import torch

from scripts.shape_variety import random_varied_scene, varied_sample
from scripts.shapes import (
    CAPTION_PROMPTS,
    QUESTIONS,
    ShapeScene,
    Style,
    draw_scene,
    parse_attributes,
    question,
    random_scene,
)

DRAW_SIDES = (64, 96, 128)  # images are drawn at one of these sides; the processor resizes them


def heldout_scenes(n: int, seed: int) -> list[tuple[ShapeScene, int, int]]:
    """(scene, draw seed, side) triples; draw seeds are odd here and even in training, never shared."""
    rng = random.Random(seed)
    return [(random_scene(rng), 2 * rng.getrandbits(31) + 1, rng.choice(DRAW_SIDES)) for _ in range(n)]


@torch.inference_mode()
def generate_replies(model, processor, images: list, chats: list[list[dict]],
                     max_new_tokens: int = 40) -> list[str]:
    """Greedy replies to a batch of chats, each with one image in its first user turn."""
    prompts = processor.apply_chat_template(chats, add_generation_prompt=True)
    inputs = processor(images=images, text=prompts, return_tensors="pt", padding=True)
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new_tokens = out[:, inputs["input_ids"].shape[1]:]
    return [t.strip() for t in processor.batch_decode(new_tokens, skip_special_tokens=True)]


def _user(text: str, with_image: bool = False) -> dict:
    content = [{"type": "image"}] if with_image else []
    return {"role": "user", "content": content + [{"type": "text", "text": text}]}


def _assistant(text: str) -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def evaluate_captions(model, processor, n: int = 200, seed: int = 2, style: Style = "detailed",
                      batch_size: int = 25, followups: bool = True) -> dict:
    """Exact-match rate and per-attribute accuracy of greedy captions on n held-out images.

    With `followups`, each chat continues with one question about a rotating attribute, asked
    after the model's own caption; its answer is scored as `followup_accuracy`.
    """
    samples = heldout_scenes(n, seed)
    prompt = CAPTION_PROMPTS[style][0]
    attributes = list(samples[0][0].attributes(style))
    hits = {a: 0 for a in attributes}
    exact, followup_hits, examples = 0, 0, []
    for start in range(0, n, batch_size):
        batch = samples[start:start + batch_size]
        images = [draw_scene(scene, side, draw_seed) for scene, draw_seed, side in batch]
        chats = [[_user(prompt, with_image=True)] for _ in batch]
        captions = generate_replies(model, processor, images, chats)
        for (scene, _, _), text in zip(batch, captions, strict=False):
            truth, got = scene.attributes(style), parse_attributes(text)
            for a in attributes:
                hits[a] += got[a] == truth[a]
            exact += all(got[a] == truth[a] for a in attributes)
        if followups:
            asked = [question(scene, sorted(QUESTIONS)[(start + i) % len(QUESTIONS)])
                     for i, (scene, _, _) in enumerate(batch)]
            chats = [chat + [_assistant(cap), _user(q)]
                     for chat, cap, (q, _) in zip(chats, captions, asked, strict=False)]
            answers = generate_replies(model, processor, images, chats)
            followup_hits += sum(got == want for got, (_, want) in zip(answers, asked, strict=False))
            examples += [{"caption": c, "question": q, "answer": a}
                         for c, (q, _), a in zip(captions[:1], asked[:1], answers[:1], strict=False)]
    report = {"n": n, "seed": seed, "style": style, "exact_match": exact / n,
              "per_attribute": {a: hits[a] / n for a in attributes}}
    if followups:
        report["followup_accuracy"] = followup_hits / n
        report["examples"] = examples[:3]
    return report


def score_images(model, processor, images: list, truths: list[dict[str, object]], style: Style = "detailed",
                 batch_size: int = 25) -> dict[str, float]:
    """Share of greedy captions that state each attribute in `truths` (e.g. {"colour": "red"}) rightly."""
    hits = {a: 0 for a in truths[0]}
    chat = [_user(CAPTION_PROMPTS[style][0], with_image=True)]
    for start in range(0, len(images), batch_size):
        replies = generate_replies(model, processor, images[start:start + batch_size],
                                   [chat] * len(images[start:start + batch_size]))
        for text, truth in zip(replies, truths[start:start + batch_size], strict=True):
            got = parse_attributes(text)
            for a in hits:
                hits[a] += got[a] == truth[a]
    return {a: hits[a] / len(images) for a in hits}


def evaluate_varied(model, processor, n: int = 100, seed: int = 1) -> dict[str, float]:
    """Colour and shape accuracy on n varied drawings (scripts/shape_variety.py) with odd, held-out draw seeds."""
    rng = random.Random(seed)
    samples = [varied_sample(random_varied_scene(rng), 2 * rng.getrandbits(31) + 1) for _ in range(n)]
    return score_images(model, processor, [image for image, _ in samples],
                        [{"colour": scene.colour, "shape": scene.shape} for _, scene in samples])
