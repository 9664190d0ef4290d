"""Uploaded images made safe for a vision model: validated before decoding, then plain 8-bit RGB."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.config import LimitsConfig
from core.errors import BadFileError, EmptyInputError

ImageSource = str | os.PathLike[str] | Image.Image


@dataclass(frozen=True)
class PreparedImage:
    image: Image.Image  # RGB, upright, at most limits.max_image_side on its longer side
    original_size: tuple[int, int]  # (width, height) as uploaded, before rotation or downscaling
    format: str  # "PNG", "JPEG", ... ("" for an in-memory image)
    notices: tuple[str, ...] = ()  # what was changed, for the user (first frame only, downscaled...)


def load_image(source: ImageSource | None, limits: LimitsConfig) -> PreparedImage:
    """Open, check and normalise an image; BadFileError/EmptyInputError with a readable message otherwise."""
    if source is None or source == "":
        raise EmptyInputError("Add an image first: upload, paste or drop one, or pick an example.")
    if isinstance(source, Image.Image):
        return _prepare(source, limits)
    path = Path(source)
    if not path.is_file():
        raise BadFileError(f"The image file {path.name} could not be found; please upload it again.")
    size = path.stat().st_size
    if size == 0:
        raise BadFileError(f"{path.name} is empty (0 bytes), not an image.")
    if size > limits.max_image_bytes:
        raise BadFileError(f"{path.name} is {size / 1e6:.1f} MB; images up to "
                           f"{limits.max_image_bytes / 1e6:.0f} MB are accepted.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own pixel limit decides
            with Image.open(path) as opened:
                return _prepare(opened, limits)
    except Image.DecompressionBombError:  # PIL refuses over ~179M pixels even to read the header
        raise BadFileError(f"{path.name} is far too large in pixels to decode safely (a decompression bomb?). "
                           f"Images up to {limits.max_image_pixels:,} pixels are accepted.") from None
    except UnidentifiedImageError:
        raise BadFileError(f"{path.name} is not an image this app can read "
                           "(PNG, JPEG, WebP, GIF, BMP and TIFF work).") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data, found while decoding
        raise BadFileError(f"{path.name} looks truncated or corrupt and cannot be decoded ({exc}).") from None


def _prepare(image: Image.Image, limits: LimitsConfig) -> PreparedImage:
    """Check the declared size, then decode (one frame), rotate, downscale and convert to RGB."""
    width, height = image.size
    source_format = image.format or ""
    if width * height > limits.max_image_pixels:
        raise BadFileError(f"The image is {width:,} x {height:,} = {width * height:,} pixels; images up to "
                           f"{limits.max_image_pixels:,} pixels are accepted. Please resize it first.")
    if width < 1 or height < 1:
        raise BadFileError("The image has no pixels.")
    notices = []
    frames = int(getattr(image, "n_frames", 1) or 1)
    if frames > 1:
        image.seek(0)
        notices.append(f"This image is animated ({frames} frames); only its first frame is used.")
    if image.format == "JPEG" and max(width, height) > limits.max_image_side:
        image.draft("RGB", (limits.max_image_side, limits.max_image_side))  # decode JPEGs at a reduced scale
    image.load()  # decoding errors (truncated data) surface here
    image = ImageOps.exif_transpose(image) or image
    image = to_rgb(image)
    if max(image.size) > limits.max_image_side:
        shown = f"{image.width} x {image.height}" if image.size != (width, height) else f"{width} x {height}"
        image.thumbnail((limits.max_image_side, limits.max_image_side), Image.Resampling.LANCZOS)
        notices.append(f"The image ({shown}) was downscaled to {image.width} x {image.height}.")
    return PreparedImage(image, (width, height), source_format, tuple(notices))


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB: transparency composited on white, 16-bit and float scaled rather than clipped."""
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_to_uint8(np.asarray(image)), "L").convert("RGB")
    return image.convert("RGB")  # 1, L, P, CMYK, YCbCr, LAB, HSV


def _to_uint8(pixels: Any) -> np.ndarray:
    """Scale a 16-bit, 32-bit integer or float greyscale array to 0-255."""
    values = pixels.astype(np.float64)
    if pixels.dtype.kind == "f":
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        values = (values - low) / (high - low or 1.0) * 255.0
    elif values.max(initial=0) > 255:
        values = values / 257.0  # 0-65535 -> 0-255
    return np.clip(np.nan_to_num(values), 0, 255).astype(np.uint8)
