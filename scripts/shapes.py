"""Seeded synthetic shape images with known truth, their captions, and follow-up questions.

The tiny DeepSeek-VL checkpoint in assets/models/deepseek-vl-tiny is trained on these images;
`parse_attributes` reads any caption back into attributes so its accuracy can be scored.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "diamond")
COLOURS = {
    "red": (220, 40, 40),
    "green": (30, 160, 60),
    "blue": (40, 80, 225),
    "yellow": (235, 200, 20),
    "purple": (140, 50, 190),
    "orange": (245, 125, 15),
}
SIZES = ("small", "large")
POSITIONS = ("left", "right", "top", "bottom", "center")
BACKGROUNDS = ("plain", "gradient", "noise")
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}

ATTRIBUTE_VALUES: dict[str, list] = {
    "shape": list(SHAPES), "colour": sorted(COLOURS), "size": list(SIZES), "count": [1, 2, 3],
    "position": [*POSITIONS, None], "background": list(BACKGROUNDS)}

Style = Literal["short", "detailed"]

# Where a lone shape sits, as fractions of the image side (x, y).
_ANCHORS = {"left": (0.25, 0.5), "right": (0.75, 0.5), "top": (0.5, 0.25),
            "bottom": (0.5, 0.75), "center": (0.5, 0.5)}
_POSITION_PHRASES = {"left": "on the left", "right": "on the right", "top": "at the top",
                     "bottom": "at the bottom", "center": "in the center"}
_BACKGROUND_PHRASES = {"plain": "plain", "gradient": "a gradient", "noise": "noisy"}
_RADIUS = {"small": 0.09, "large": 0.16}  # fraction of the image side
_GRID = [(x, y) for x in (0.25, 0.5, 0.75) for y in (0.25, 0.5, 0.75)]

CAPTION_PROMPTS: dict[str, tuple[str, ...]] = {
    "short": ("Caption this image.", "What is in this image?"),
    "detailed": ("Describe this image.", "Describe the image in detail."),
}


@dataclass(frozen=True)
class ShapeScene:
    """The truth behind one image: `count` identical shapes; `position` only when count == 1."""

    shape: str
    colour: str
    size: str
    count: int
    position: str | None
    background: str

    def attributes(self, style: Style = "detailed") -> dict[str, object]:
        """The attributes a caption of this style states (short captions omit the background)."""
        attrs = asdict(self)
        if style == "short":
            del attrs["background"]
        return attrs


def random_scene(rng: random.Random) -> ShapeScene:
    """Draw a scene uniformly over shape, colour, size, count, position and background."""
    count = rng.choice((1, 2, 3))
    return ShapeScene(
        shape=rng.choice(SHAPES),
        colour=rng.choice(sorted(COLOURS)),
        size=rng.choice(SIZES),
        count=count,
        position=rng.choice(POSITIONS) if count == 1 else None,
        background=rng.choice(BACKGROUNDS),
    )


def _background(kind: str, side: int, rng: random.Random) -> Image.Image:
    """A light background, so every shape colour stays visible; gradients and noise are coarse
    enough to survive resizing to the model's 64 px input."""
    base = np.array([rng.randint(190, 255) for _ in range(3)], dtype=np.float32)
    if kind == "plain":
        pixels = np.broadcast_to(base, (side, side, 3))
    elif kind == "gradient":
        other = base - np.array([rng.randint(50, 110) for _ in range(3)], dtype=np.float32)
        ramp = np.linspace(0.0, 1.0, side, dtype=np.float32)
        ramp = ramp[None, :, None] if rng.random() < 0.5 else ramp[:, None, None]
        if rng.random() < 0.5:
            ramp = 1.0 - ramp
        pixels = np.broadcast_to(base + (other - base) * ramp, (side, side, 3))
    else:
        grain = np.random.default_rng(rng.getrandbits(32)).normal(0.0, 28.0, (16, 16, 3))
        grain = np.repeat(np.repeat(grain, -(-side // 16), axis=0), -(-side // 16), axis=1)[:side, :side]
        pixels = base - 15.0 + grain
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _centres(scene: ShapeScene, radius: float, rng: random.Random) -> list[tuple[float, float]]:
    """Shape centres in unit coordinates, on the corners of a 4x4 grid (plus a little jitter).

    The model's vision tower cuts its 64 px input into 16 px patches along that grid; shapes
    centred on the patch corners look alike to it wherever they are, which lets a ViT this small
    learn shapes in minutes rather than hours.
    """
    if scene.count == 1:
        spots = [_ANCHORS[scene.position]]
    else:
        while True:  # rejection sampling over the 9 inner corners; a few tries at most
            spots = rng.sample(_GRID, scene.count)
            if all(np.hypot(a[0] - b[0], a[1] - b[1]) > 2.1 * radius
                   for i, a in enumerate(spots) for b in spots[i + 1:]):
                break
    return [(x + rng.uniform(-0.015, 0.015), y + rng.uniform(-0.015, 0.015)) for x, y in spots]


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float,
                fill: tuple[int, int, int]) -> None:
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        s = r * 0.9
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + 0.8 * r), (cx + r, cy + 0.8 * r)], fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)


def draw_scene(scene: ShapeScene, side: int = 64, seed: int = 0) -> Image.Image:
    """Render `scene` as a side x side RGB image; `seed` fixes background and exact placement."""
    rng = random.Random(seed)
    image = _background(scene.background, side, rng)
    draw = ImageDraw.Draw(image)
    radius = _RADIUS[scene.size] * rng.uniform(0.9, 1.1)
    for cx, cy in _centres(scene, radius, rng):
        fill = tuple(int(np.clip(c + rng.randint(-15, 15), 0, 255)) for c in COLOURS[scene.colour])
        _draw_shape(draw, scene.shape, cx * side, cy * side, radius * side, fill)
    return image


def _noun(scene: ShapeScene) -> str:
    return f"{scene.size} {scene.colour} {scene.shape}" + ("s" if scene.count > 1 else "")


def caption(scene: ShapeScene, style: Style = "short") -> str:
    """The reference caption, e.g. 'A small red circle on the left.' or 'Two large blue squares.'."""
    if style == "short":
        lead = "A" if scene.count == 1 else COUNT_WORDS[scene.count].capitalize()
        where = f" {_POSITION_PHRASES[scene.position]}" if scene.position else ""
        return f"{lead} {_noun(scene)}{where}."
    if scene.count == 1:
        body = f"There is one {_noun(scene)} {_POSITION_PHRASES[scene.position]}."
    else:
        body = f"There are {COUNT_WORDS[scene.count]} {_noun(scene)}."
    return f"{body} The background is {_BACKGROUND_PHRASES[scene.background]}."


def _first(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text)
    return match.group(1) if match else None


def parse_attributes(text: str) -> dict[str, object]:
    """Read shape, colour, size, count, position and background out of a caption (None if absent)."""
    text = text.lower()
    shape = _first(r"\b(" + "|".join(SHAPES) + r")s?\b", text)
    count_word = _first(r"\b(one|two|three)\b", text)
    count = {"one": 1, "two": 2, "three": 3}.get(count_word or "")
    if count is None and shape is not None:
        count = 2 if re.search(r"\b" + shape + r"s\b", text) else 1
    background = _first(r"\b(plain|gradient|noisy|noise)\b", text)
    return {
        "shape": shape,
        "colour": _first(r"\b(" + "|".join(COLOURS) + r")\b", text),
        "size": _first(r"\b(small|large)\b", text),
        "count": count,
        "position": _first(r"\b(left|right|top|bottom|center)\b", text),
        "background": "noise" if background == "noisy" else background,
    }


# Follow-up questions: attribute -> (question for one shape, question for several, answer fn).
QUESTIONS = {
    "colour": ("What colour is the shape?", "What colour are the shapes?",
               lambda s: f"{s.colour.capitalize()}."),
    "count": ("How many shapes are there?", "How many shapes are there?",
              lambda s: f"{COUNT_WORDS[s.count].capitalize()}."),
    "shape": ("What shape is it?", "What shape are they?",
              lambda s: f"A {s.shape}." if s.count == 1 else f"{s.shape.capitalize()}s."),
    "size": ("Is it small or large?", "Are they small or large?",
             lambda s: f"{s.size.capitalize()}."),
    "position": ("Where is the shape?", "Where are the shapes?",
                 lambda s: f"{_POSITION_PHRASES[s.position].capitalize()}." if s.position
                 else "Spread across the image."),
    "background": ("What is the background like?", "What is the background like?",
                   lambda s: f"{_BACKGROUND_PHRASES[s.background].capitalize()}."),
}


def question(scene: ShapeScene, attribute: str) -> tuple[str, str]:
    """A (question, reference answer) pair about one attribute of the scene."""
    single, several, answer = QUESTIONS[attribute]
    return (single if scene.count == 1 else several), answer(scene)


def conversation(scene: ShapeScene, rng: random.Random) -> list[dict]:
    """A chat in the processor's message format: a caption or question turn, then 0-2 follow-ups."""
    if rng.random() < 0.8:
        style = rng.choice(("short", "detailed"))
        first = (rng.choice(CAPTION_PROMPTS[style]), caption(scene, style))
    else:
        first = question(scene, rng.choice(sorted(QUESTIONS)))
    turns = [first] + [question(scene, a) for a in rng.sample(sorted(QUESTIONS), rng.randint(0, 2))]
    messages: list[dict] = []
    for i, (ask, answer) in enumerate(turns):
        content = [{"type": "image"}] if i == 0 else []
        messages.append({"role": "user", "content": content + [{"type": "text", "text": ask}]})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages
