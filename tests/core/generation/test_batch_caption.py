"""Batch captioning on the real bundled DeepSeek-VL: one generate per batch, uploads and zips checked per file."""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import LimitsConfig
from core.errors import EmptyInputError
from core.generation.batch_caption import CaptionItem, caption_batch, caption_many
from core.generation.image_batch import collect_items
from core.generation.images import load_image
from core.generation.sampling import SamplingParams
from core.generation.vision import VisionRequest, stream_caption
from scripts.shapes import draw_scene, parse_attributes
from scripts.vision_eval import heldout_scenes
from tests.conftest import VISION_MODEL

GREEDY = SamplingParams(max_new_tokens=40, temperature=0, repetition_penalty=1.0)


@pytest.fixture(scope="module")
def vision(registry):
    return registry.get(VISION_MODEL, "fp32")


@pytest.fixture(scope="module")
def scenes():
    return heldout_scenes(8, 21)


def _mixed_files(folder: Path, scenes) -> list[Path]:
    """The same scenes saved in mixed sizes and modes: RGB PNG, RGBA, greyscale-free palette, JPEG, wide, tall."""
    paths = []
    for i, (scene, seed, side) in enumerate(scenes):
        image = draw_scene(scene, side, seed)
        kind = i % 4
        if kind == 1:
            image = image.convert("RGBA")
        elif kind == 2:
            image = image.convert("P", palette=Image.Palette.ADAPTIVE)
        path = folder / f"{i}.{'jpg' if kind == 3 else 'png'}"
        image.save(path, quality=95) if kind == 3 else image.save(path)
        paths.append(path)
    return paths


def test_one_batch_gives_the_captions_of_one_image_at_a_time(vision, scenes):
    images = [draw_scene(scene, side, seed) for scene, seed, side in scenes]
    batched = caption_batch(vision, images, "detailed", GREEDY, threading.Event())
    for image, (text, tokens) in zip(images, batched, strict=True):
        stream = stream_caption(vision, VisionRequest(image, style="detailed"), GREEDY, threading.Event())
        assert text == "".join(stream).strip()
        assert tokens == len(vision.tokenizer(" " + text, add_special_tokens=False)["input_ids"])


def test_mixed_sizes_and_modes_are_all_captioned_in_one_batch(vision, scenes, tmp_path):
    items = collect_items(_mixed_files(tmp_path, scenes), LimitsConfig())
    rows = [row for batch in caption_many(vision, items, "short", GREEDY, threading.Event()) for row in batch]
    assert [r.name for r in rows] == [p.name for p in _mixed_files(tmp_path, scenes)]
    right = sum(parse_attributes(r.caption)["colour"] == s.colour for r, (s, _, _) in zip(rows, scenes, strict=True))
    assert right >= 7 and all(r.tokens > 0 and r.seconds > 0 and not r.error for r in rows)


def test_a_zip_is_captioned_file_by_file_and_non_images_get_a_message(vision, scenes, tmp_path):
    archive = tmp_path / "shapes.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in _mixed_files(tmp_path, scenes[:3]):
            zf.write(path, f"pics/{path.name}")
        zf.writestr("notes.txt", "not an image")
        zf.writestr("__MACOSX/._0.png", b"resource fork")
    items = collect_items([archive], LimitsConfig())
    assert [i.name for i in items] == ["pics/0.png", "pics/1.png", "pics/2.png", "notes.txt"]
    assert items[3].image is None and "not an image" in items[3].error and "notes.txt" in items[3].error
    rows = [row for batch in caption_many(vision, items, "short", GREEDY, threading.Event()) for row in batch]
    assert rows[0].name == "notes.txt" and rows[0].error  # refusals come first, at once
    assert all(r.caption and not r.error for r in rows[1:])


def test_a_zip_bomb_is_refused_from_its_headers(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.png", bytes(30_000_000))  # 30 MB of zeros, ~30 KB compressed
    assert bomb.stat().st_size < 100_000
    items = collect_items([bomb], LimitsConfig(max_zip_bytes=20_000_000))
    assert len(items) == 1 and items[0].image is None and "unpack to 30 MB" in items[0].error


def test_a_zip_with_too_many_files_is_refused_from_its_headers(tmp_path):
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(6):
            zf.writestr(f"{i}.txt", "x")
    [item] = collect_items([many], LimitsConfig(max_zip_files=5))
    assert "6 files" in item.error


def test_images_beyond_the_limit_are_refused_by_name(scenes, tmp_path):
    items = collect_items(_mixed_files(tmp_path, scenes[:3]), LimitsConfig(max_batch_images=2))
    assert [i.image is not None for i in items] == [True, True, False]
    assert "at most 2 images" in items[2].error


def test_no_files_is_a_clear_message():
    with pytest.raises(EmptyInputError, match="Add images"):
        collect_items([], LimitsConfig())


def test_stop_leaves_later_batches_uncaptioned(vision, scenes):
    stop = threading.Event()
    items = [CaptionItem(str(i), draw_scene(s, side, seed)) for i, (s, seed, side) in enumerate(scenes)]
    batches = caption_many(vision, items, "short", GREEDY, stop, batch_size=4)
    first = next(batches)
    stop.set()
    rest = [row for batch in batches for row in batch]
    assert len(first) == 4 and all(r.caption for r in first)
    assert [r.name for r in rest] == ["4", "5", "6", "7"] and all("stopped" in r.error for r in rest)


def test_one_image_prepared_by_load_image_keeps_its_notices(tmp_path):
    wide = tmp_path / "wide.png"
    Image.fromarray(np.zeros((10, 3000, 3), np.uint8)).save(wide)
    [item] = collect_items([wide], LimitsConfig())
    assert item.image is not None and item.notices == load_image(wide, LimitsConfig()).notices
