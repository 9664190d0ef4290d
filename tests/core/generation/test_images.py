"""Every kind of awkward upload either becomes a plain RGB image or a message a person understands."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import LimitsConfig
from core.errors import BadFileError, EmptyInputError
from core.generation.images import load_image

LIMITS = LimitsConfig()


def saved(tmp_path: Path, image: Image.Image, name: str, **kwargs) -> Path:
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def png_header_only(tmp_path: Path, width: int, height: int) -> Path:
    """A PNG that declares width x height but holds almost no data: decoding it would allocate it all."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path = tmp_path / f"bomb-{width}x{height}.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def test_missing_image_asks_for_one():
    with pytest.raises(EmptyInputError, match="Add an image"):
        load_image(None, LIMITS)


def test_text_file_is_refused_as_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("just some text, not pixels")
    with pytest.raises(BadFileError, match="not an image"):
        load_image(path, LIMITS)


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(BadFileError, match="empty"):
        load_image(path, LIMITS)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_is_refused_as_corrupt(tmp_path, fmt):
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8))
    path = saved(tmp_path, noise, f"whole.{fmt.lower()}", format=fmt)
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BadFileError, match="truncated or corrupt"):
        load_image(cut, LIMITS)


@pytest.mark.parametrize("side", [30000, 10000])  # beyond PIL's own hard limit / between it and ours
def test_decompression_bomb_is_refused_before_decoding(tmp_path, side):
    with pytest.raises(BadFileError, match="pixels"):
        load_image(png_header_only(tmp_path, side, side), LIMITS)


def test_file_over_the_byte_limit_is_refused_unread(tmp_path):
    path = saved(tmp_path, Image.new("RGB", (64, 64), "red"), "red.bmp")
    with pytest.raises(BadFileError, match="MB"):
        load_image(path, LimitsConfig(max_image_bytes=1000))


def test_one_pixel_image_is_accepted(tmp_path):
    prepared = load_image(saved(tmp_path, Image.new("RGB", (1, 1), (10, 20, 30)), "dot.png"), LIMITS)
    assert prepared.image.size == (1, 1) and prepared.image.getpixel((0, 0)) == (10, 20, 30)


def test_transparent_rgba_is_composited_on_white(tmp_path):
    image = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    image.putpixel((0, 0), (255, 0, 0, 255))
    prepared = load_image(saved(tmp_path, image, "rgba.png"), LIMITS)
    assert prepared.image.mode == "RGB"
    assert prepared.image.getpixel((5, 5)) == (255, 255, 255) and prepared.image.getpixel((0, 0)) == (255, 0, 0)


def test_palette_image_with_transparency_becomes_rgb_on_white(tmp_path):
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 255] + [0, 255, 0] * 255)
    image.putpixel((0, 0), 1)
    prepared = load_image(saved(tmp_path, image, "palette.png", transparency=0), LIMITS)
    assert prepared.image.getpixel((4, 4)) == (255, 255, 255) and prepared.image.getpixel((0, 0)) == (0, 255, 0)


def test_greyscale_becomes_rgb(tmp_path):
    prepared = load_image(saved(tmp_path, Image.new("L", (8, 8), 100), "grey.png"), LIMITS)
    assert prepared.image.mode == "RGB" and prepared.image.getpixel((1, 1)) == (100, 100, 100)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    prepared = load_image(saved(tmp_path, Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "cmyk.jpg"), LIMITS)
    red, green, blue = prepared.image.getpixel((8, 8))
    assert prepared.image.mode == "RGB" and red > 200 and green < 60 and blue < 60


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    pixels = np.full((8, 8), 32768, dtype=np.uint16)
    prepared = load_image(saved(tmp_path, Image.fromarray(pixels), "deep.png"), LIMITS)
    assert prepared.image.mode == "RGB" and 120 <= prepared.image.getpixel((1, 1))[0] <= 135


def test_animated_gif_uses_first_frame_and_says_so(tmp_path):
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "blue", "green")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    prepared = load_image(path, LIMITS)
    assert prepared.image.getpixel((8, 8))[0] > 200 and prepared.image.getpixel((8, 8))[2] < 50
    assert any("3 frames" in n for n in prepared.notices)


def test_exif_rotation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), "white")
    image.paste((255, 0, 0), (0, 0, 10, 20))  # red stripe on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    prepared = load_image(saved(tmp_path, image, "phone.jpg", exif=exif, quality=95), LIMITS)
    assert prepared.image.size == (20, 40)
    assert prepared.image.getpixel((10, 2))[1] < 80  # the left stripe is now on top


def test_oversized_image_is_downscaled_with_a_notice(tmp_path):
    path = saved(tmp_path, Image.new("RGB", (400, 200), "blue"), "wide.png")
    prepared = load_image(path, LimitsConfig(max_image_side=100))
    assert prepared.image.size == (100, 50) and prepared.original_size == (400, 200)
    assert any("downscaled" in n for n in prepared.notices)


def test_in_memory_image_is_accepted_and_left_unchanged():
    original = Image.new("RGB", (32, 32), "yellow")
    prepared = load_image(original, LIMITS)
    assert prepared.image.size == (32, 32) and prepared.image is not original and not prepared.notices
