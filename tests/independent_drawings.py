"""Held-out drawings made by code that shares nothing with the training generator (scripts/shapes.py).

One shape per image, rasterised from numpy masks with 3x3 supersampling (never PIL's ImageDraw), in
named web colours rather than the training palette, on canvases 320-640 px on the long side with
aspect ratios from 1:2 to 2:1 (never square), on white, tinted or dark plain backgrounds; filled or
outlined; sometimes with light pixel noise and/or saved as a JPEG. Used to check that the bundled
DeepSeek-VL names the colour and the shape of drawings it was not trained on.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

# Several named shades per colour word (CSS / common web colours), none of them the training RGB.
WEB_COLOURS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "red": ((255, 0, 0), (178, 34, 34), (220, 20, 60), (200, 16, 46)),
    "green": ((0, 128, 0), (34, 139, 34), (50, 205, 50), (0, 168, 107)),
    "blue": ((0, 0, 255), (30, 144, 255), (65, 105, 225), (0, 71, 171)),
    "yellow": ((255, 255, 0), (255, 215, 0), (250, 218, 94), (255, 240, 60)),
    "orange": ((255, 165, 0), (255, 140, 0), (255, 117, 24), (237, 145, 33)),
    "purple": ((128, 0, 128), (148, 0, 211), (106, 13, 173), (153, 50, 204)),
}
FIGURES = ("circle", "square", "triangle", "diamond")
SUPERSAMPLE = 3


@dataclass(frozen=True)
class Drawing:
    """One held-out image and the colour word and shape word a caption should use."""

    image: Image.Image
    colour: str
    shape: str
    outlined: bool
    note: str  # how it was made, for failure messages


def _canvas_size(rng: np.random.Generator) -> tuple[int, int]:
    long_side = int(rng.integers(320, 641))
    ratio = float(np.exp(rng.uniform(np.log(1.15), np.log(2.0))))  # never square
    short_side = int(round(long_side / ratio))
    return (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)


def _background(rng: np.random.Generator) -> np.ndarray:
    roll = rng.random()
    if roll < 0.5:
        return np.array([255.0, 255.0, 255.0])
    if roll < 0.85:
        return rng.uniform(215, 250, 3)  # a pale tint or light grey
    return np.full(3, rng.uniform(20, 70))  # dark grey to near black


def _mask(figure: str, xs: np.ndarray, ys: np.ndarray, r: float) -> np.ndarray:
    """Inside test for a figure centred at the origin with 'radius' r (coordinates in pixels)."""
    if figure == "circle":
        return xs ** 2 + ys ** 2 <= r ** 2
    if figure == "square":
        return np.maximum(np.abs(xs), np.abs(ys)) <= 0.85 * r
    if figure == "diamond":
        return np.abs(xs) + np.abs(ys) <= r
    # Upward triangle: apex at (0, -r), base on y = 0.75 r spanning x = +-0.95 r.
    return (ys <= 0.75 * r) & (np.abs(xs) <= (ys + r) * 0.95 / 1.75)


def _coverage(figure: str, size: tuple[int, int], centre: tuple[float, float], r: float,
              thickness: float) -> np.ndarray:
    """Fraction of each pixel the figure (or its outline of `thickness` px) covers, shape (h, w)."""
    width, height = size
    step = 1.0 / SUPERSAMPLE
    offsets = (np.arange(SUPERSAMPLE) + 0.5) * step
    xs = (np.arange(width)[:, None] + offsets[None, :]).reshape(-1) - centre[0]
    ys = (np.arange(height)[:, None] + offsets[None, :]).reshape(-1) - centre[1]
    grid_x, grid_y = np.meshgrid(xs, ys)
    inside = _mask(figure, grid_x, grid_y, r)
    if thickness > 0:
        inside &= ~_mask(figure, grid_x, grid_y, r - thickness)
    return inside.reshape(height, SUPERSAMPLE, width, SUPERSAMPLE).mean(axis=(1, 3))


def _pick_colour(rng: np.random.Generator, background: np.ndarray) -> tuple[str, np.ndarray]:
    """A colour word and one of its shades that stands out from the background."""
    while True:
        word = list(WEB_COLOURS)[int(rng.integers(len(WEB_COLOURS)))]
        shade = np.array(WEB_COLOURS[word][int(rng.integers(len(WEB_COLOURS[word])))], dtype=float)
        if np.abs(shade - background).sum() > 150:
            return word, shade


def draw(seed: int) -> Drawing:
    """One held-out drawing, fully determined by `seed`."""
    rng = np.random.default_rng(seed)
    size = _canvas_size(rng)
    background = _background(rng)
    colour, shade = _pick_colour(rng, background)
    figure = FIGURES[int(rng.integers(len(FIGURES)))]
    short = min(size)
    r = float(rng.uniform(0.15, 0.45)) * short
    centre = (float(rng.uniform(r + 2, size[0] - r - 2)), float(rng.uniform(r + 2, size[1] - r - 2)))
    outlined = bool(rng.random() < 0.3)
    thickness = float(rng.uniform(0.12, 0.25)) * r if outlined else 0.0
    cover = _coverage(figure, size, centre, r, thickness)[..., None]
    pixels = background * (1.0 - cover) + shade * cover
    noisy = bool(rng.random() < 0.4)
    if noisy:
        pixels = pixels + rng.normal(0.0, float(rng.uniform(2.0, 8.0)), pixels.shape)
    image = Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8), "RGB")
    quality = int(rng.integers(35, 90)) if rng.random() < 0.4 else 0
    if quality:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        image = Image.open(io.BytesIO(buffer.getvalue()))
        image.load()
    note = (f"seed {seed}: {'outlined' if outlined else 'filled'} {colour} {figure} r={r:.0f}px on "
            f"{size[0]}x{size[1]} bg={tuple(int(v) for v in background)}"
            f"{' noise' if noisy else ''}{f' jpeg q{quality}' if quality else ''}")
    return Drawing(image, colour, figure, outlined, note)


def drawings(n: int, first_seed: int = 1000) -> list[Drawing]:
    """n held-out drawings with consecutive seeds."""
    return [draw(first_seed + i) for i in range(n)]
