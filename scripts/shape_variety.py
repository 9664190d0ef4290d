"""Varied renderings of shape scenes, so the tiny DeepSeek-VL learns colours and shapes, not one drawing style.

`draw_scene` (scripts/shapes.py) draws every scene the same way: a square canvas, shapes on a fixed
grid, a light background, one RGB per colour. `varied_sample` draws a scene with what real drawings
vary: a canvas from 1:2 to 2:1 (DeepSeek-VL's processor pads it to a square with its mean colour),
a shape scaled up to most of the image anywhere it fits, white, light, grey or dark plain backgrounds,
each colour word as a range of hues, saturations and brightnesses, outlines as well as fills, light
pixel noise and JPEG artefacts. Sizes are relative to the canvas's long side (what the model sees).
"""

from __future__ import annotations

import colorsys
import io
import math
import random
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

from scripts.shapes import (
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    ShapeScene,
    _background,
    _draw_shape,
    random_scene,
)

# colour word -> (hue range in degrees, saturation range, value range); hues may wrap below 0.
HSV_RANGES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "red": ((-14, 8), (0.65, 1.0), (0.55, 1.0)),
    "orange": ((20, 40), (0.75, 1.0), (0.85, 1.0)),
    "yellow": ((46, 62), (0.55, 1.0), (0.85, 1.0)),
    "green": ((85, 165), (0.55, 1.0), (0.4, 0.9)),
    "blue": ((198, 245), (0.55, 1.0), (0.5, 1.0)),
    "purple": ((265, 305), (0.55, 1.0), (0.4, 0.9)),
}
SMALL_R, LARGE_R = (0.07, 0.11), (0.15, 0.46)  # radius as a fraction of the long side
_ANCHOR_FRACTIONS = {"left": (0.25, 0.5), "right": (0.75, 0.5), "top": (0.5, 0.25), "bottom": (0.5, 0.75),
                     "center": (0.5, 0.5)}


def colour_shade(word: str, rng: random.Random) -> tuple[int, int, int]:
    """A random RGB that a person would still call `word`."""
    (h0, h1), (s0, s1), (v0, v1) = HSV_RANGES[word]
    hue = (rng.uniform(h0, h1) % 360) / 360
    red, green, blue = colorsys.hsv_to_rgb(hue, rng.uniform(s0, s1), rng.uniform(v0, v1))
    return round(red * 255), round(green * 255), round(blue * 255)


def _canvas(rng: random.Random) -> tuple[int, int]:
    long_side = rng.randint(64, 224)
    short_side = round(long_side / math.exp(rng.uniform(0.0, math.log(2.0))))
    return (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)


@dataclass(frozen=True)
class Variety:
    """How often a varied drawing's plain background is dark and its shapes outlined, and how thin an outline
    may be (the defaults are the drawings the bundled recipe was first tuned on)."""

    dark: float = 0.2  # share of plain backgrounds that are dark
    outlined: float = 0.3  # share of drawings whose shapes are outlines
    thin: bool = False  # outlines down to 1 px (else at least 2 px and 1/40 of the long side)


def _plain(rng: random.Random, size: tuple[int, int], dark: float = 0.2) -> tuple[Image.Image, np.ndarray]:
    roll = rng.random()
    if dark != 0.2:  # the light shares keep their ratios
        roll = roll * 0.8 / (1.0 - dark) if roll < 1.0 - dark else 1.0
    if roll < 0.5:
        rgb = np.full(3, 255.0)
    elif roll < 0.7:
        rgb = np.array([rng.uniform(200, 255) for _ in range(3)])
    elif roll < 0.8:
        rgb = np.full(3, rng.uniform(90, 200))
    else:
        rgb = np.array([rng.uniform(0, 80) for _ in range(3)])
    return Image.new("RGB", size, tuple(int(v) for v in rgb)), rgb


def _backdrop(kind: str, size: tuple[int, int], rng: random.Random,
              dark: float = 0.2) -> tuple[Image.Image, np.ndarray]:
    """The background image and its mean colour (for the contrast check)."""
    if kind == "plain":
        return _plain(rng, size, dark)
    square = _background(kind, max(size), rng)  # the training gradients and coarse noise, cropped
    image = square.crop((0, 0, *size))
    return image, np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(0)


def _fill(word: str, backdrop: np.ndarray, rng: random.Random) -> tuple[int, int, int]:
    for _ in range(50):
        shade = colour_shade(word, rng)
        if np.abs(np.array(shade) - backdrop).sum() > 150:
            return shade
    return COLOURS[word]


def _place(scene: ShapeScene, size: tuple[int, int], rng: random.Random) -> tuple[float, list[tuple[float, float]]]:
    """(radius, centres) in pixels for the scene's size, count and position on this canvas."""
    width, height = size
    long_side, short_side = max(size), min(size)
    low, high = SMALL_R if scene.size == "small" else LARGE_R
    if scene.position is not None:
        fx, fy = _ANCHOR_FRACTIONS[scene.position]
        # Wide jitter around the anchor: shapes land anywhere relative to the 16 px patches.
        cx, cy = (fx + rng.uniform(-0.1, 0.1)) * width, (fy + rng.uniform(-0.1, 0.1)) * height
        room = min(cx, width - cx, cy, height - cy) - 1
        radius = min(rng.uniform(low, high) * long_side, room)
        return max(radius, 2.0), [(cx, cy)]
    high = min(high, 0.5 * short_side / long_side / scene.count + 0.05)
    for _ in range(100):
        radius = min(rng.uniform(low, max(low, high)) * long_side, 0.45 * short_side)
        centres = [(rng.uniform(radius + 1, width - radius - 1), rng.uniform(radius + 1, height - radius - 1))
                   for _ in range(scene.count)]
        if all(max(abs(a[0] - b[0]), abs(a[1] - b[1])) > 2.1 * radius  # apart even corner to corner
               for i, a in enumerate(centres) for b in centres[i + 1:]):
            return radius, centres
    # Crowded canvas: a row along the long side, in random order of slots.
    radius = min(low * long_side, long_side / (2.2 * scene.count), 0.45 * short_side)
    slots = [(i + 0.5) / scene.count for i in range(scene.count)]
    if width >= height:
        return radius, [(f * width, height / 2) for f in slots]
    return radius, [(width / 2, f * height) for f in slots]


def random_varied_scene(rng: random.Random, lone: float = 0.3, plain: float = 0.3) -> ShapeScene:
    """random_scene, leaning towards what people draw: made a lone shape with probability `lone` (over half the
    time by default) and put on a plain background with probability `plain` (on top of random_scene's third)."""
    scene = random_scene(rng)
    if rng.random() < lone:
        scene = replace(scene, count=1, position=rng.choice(POSITIONS))
    if rng.random() < plain:
        scene = replace(scene, background="plain")
    return scene


def varied_scene(scene: ShapeScene, size: tuple[int, int]) -> ShapeScene:
    """The scene, with a lone large shape that cannot fit at its position moved to the center."""
    if scene.count != 1 or scene.size != "large":
        return scene
    fx, fy = _ANCHOR_FRACTIONS[scene.position or "center"]
    room = min(fx * size[0], (1 - fx) * size[0], fy * size[1], (1 - fy) * size[1]) / max(size)
    if room - 0.05 >= LARGE_R[0]:
        return scene
    return ShapeScene(scene.shape, scene.colour, scene.size, 1, "center", scene.background)


def _outline(mask: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, width: int) -> None:
    """The shape's outline on a mask, as the difference of two fills (PIL's polygon outlines are uneven)."""
    _draw_shape(mask, shape, cx, cy, r, 255)  # type: ignore[arg-type]
    inner = r - width * (1.6 if shape in ("triangle", "diamond") else 1.0)
    if inner > 1:
        _draw_shape(mask, shape, cx, cy, inner, 0)  # type: ignore[arg-type]


def _finish(image: Image.Image, rng: random.Random) -> Image.Image:
    """Light pixel noise and/or a JPEG round trip, each on some images."""
    if rng.random() < 0.3:
        pixels = np.asarray(image, dtype=np.float32)
        noise = np.random.default_rng(rng.getrandbits(32)).normal(0.0, rng.uniform(2, 8), pixels.shape)
        image = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.3:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=rng.randint(30, 90))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image


def _toward_patch_corners(centres: list[tuple[float, float]], radius: float, size: tuple[int, int],
                          jitter: float, grid: int) -> list[tuple[float, float]]:
    """Centres moved toward the nearest patch corner of the model's view (the canvas padded to a square,
    centred, cut into grid x grid patches): jitter 0 puts them on a corner, 1 leaves them as drawn."""
    long_side = max(size)
    pad_x, pad_y = (long_side - size[0]) / 2, (long_side - size[1]) / 2
    step = long_side / grid
    moved = []
    for cx, cy in centres:
        sx = min(max(round((cx + pad_x) / step), 1), grid - 1) * step - pad_x
        sy = min(max(round((cy + pad_y) / step), 1), grid - 1) * step - pad_y
        x, y = sx + jitter * (cx - sx), sy + jitter * (cy - sy)
        moved.append((min(max(x, radius + 1), size[0] - radius - 1), min(max(y, radius + 1), size[1] - radius - 1)))
    return moved


@dataclass(frozen=True)
class Layout:
    """Where a varied drawing put its shapes: canvas (width, height), radius and centres in pixels."""

    size: tuple[int, int]
    radius: float
    centres: list[tuple[float, float]]

    def patch_map(self, grid: int, reach: float = 0.8) -> list[list[bool]]:
        """grid x grid flags (rows top down) of the model's patches (the canvas padded to a centred square)
        that a shape reaches into: the patch comes within `reach` x radius of a centre."""
        long_side = max(self.size)
        pad_x, pad_y = (long_side - self.size[0]) / 2, (long_side - self.size[1]) / 2
        step = long_side / grid
        def near(row: int, col: int) -> bool:
            for cx, cy in self.centres:
                dx = max(col * step - (cx + pad_x), 0.0, (cx + pad_x) - (col + 1) * step)
                dy = max(row * step - (cy + pad_y), 0.0, (cy + pad_y) - (row + 1) * step)
                if math.hypot(dx, dy) < reach * self.radius:
                    return True
            return False
        return [[near(row, col) for col in range(grid)] for row in range(grid)]


def varied_sample(scene: ShapeScene, seed: int, jitter: float = 1.0, grid: int = 4,
                  variety: Variety = Variety()) -> tuple[Image.Image, ShapeScene]:
    """A varied drawing of `scene` and the scene it really shows (see varied_scene). A jitter below 1 pulls
    lone shapes toward the model's patch corners (a position curriculum: 0 = on a corner)."""
    image, shown, _ = varied_layout(scene, seed, jitter, grid, variety)
    return image, shown


def varied_layout(scene: ShapeScene, seed: int, jitter: float = 1.0, grid: int = 4,
                  variety: Variety = Variety()) -> tuple[Image.Image, ShapeScene, Layout]:
    """varied_sample, and where its shapes are."""
    rng = random.Random(seed)
    size = _canvas(rng)
    scene = varied_scene(scene, size)
    image, backdrop = _backdrop(scene.background, size, rng, variety.dark)
    colour = _fill(scene.colour, backdrop, rng)
    radius, centres = _place(scene, size, rng)
    if jitter < 1.0 and len(centres) == 1:
        centres = _toward_patch_corners(centres, radius, size, jitter, grid)
    outlined = rng.random() < variety.outlined
    width = round(rng.uniform(0.12, 0.3) * radius)
    width = max(1, width) if variety.thin else max(2, width, round(max(size) / 40))
    mask = Image.new("L", size, 0)  # shapes are drawn as a mask, then painted in, so outlines stay hollow
    draw = ImageDraw.Draw(mask)
    for cx, cy in centres:
        if outlined:
            _outline(draw, scene.shape, cx, cy, radius, width)
        else:
            _draw_shape(draw, scene.shape, cx, cy, radius, 255)  # type: ignore[arg-type]
    image.paste(Image.new("RGB", size, colour), (0, 0), mask)
    return _finish(image, rng), scene, Layout(size, radius, centres)


__all__ = ["HSV_RANGES", "SHAPES", "SIZES", "Layout", "Variety", "colour_shade", "random_varied_scene", "varied_layout",
           "varied_sample", "varied_scene"]
