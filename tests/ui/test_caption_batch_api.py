"""/caption_batch through gradio_client: images and a zip in, rows streamed per batch, bad files explained by name."""

from __future__ import annotations

import zipfile

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from scripts.shapes import draw_scene, parse_attributes
from scripts.vision_eval import heldout_scenes
from tests.conftest import TEXT_MODEL, VISION_MODEL

SCENES = heldout_scenes(10, 31)


@pytest.fixture(scope="module")
def uploads(tmp_path_factory):
    """Nine PNGs as separate files and a zip holding the tenth image, a text file and a nested folder."""
    folder = tmp_path_factory.mktemp("batch")
    paths = []
    for i, (scene, seed, side) in enumerate(SCENES):
        paths.append(folder / f"shape{i}.png")
        draw_scene(scene, side, seed).save(paths[-1])
    archive = folder / "more.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(paths[-1], "inner/shape9.png")
        zf.writestr("readme.txt", "hello")
    return paths[:-1], archive


def test_caption_batch_streams_rows_for_every_file_in_upload_order(client, uploads):
    pngs, archive = uploads
    job = client.submit([handle_file(str(p)) for p in [*pngs, archive]], "short", VISION_MODEL, "fp32", 40, 0.0, 4,
                        api_name="/caption_batch")
    updates = list(job)
    final = updates[-1]
    assert len(updates) >= 3  # refusals, then one update per batch of 4 (9 + 1 images: 3 batches)
    assert final[0]["file"] == "readme.txt" and "not an image" in final[0]["error"]
    assert [r["file"] for r in final[1:]] == [p.name for p in pngs] + ["inner/shape9.png"]
    right = sum(parse_attributes(r["caption"])["colour"] == s.colour for r, (s, _, _) in zip(final[1:], SCENES,
                                                                                              strict=True))
    assert right >= 9 and all(r["tokens"] > 0 and r["seconds"] > 0 for r in final[1:])


@pytest.mark.parametrize("args,message", [
    ((), "Add images"),
    (("short", TEXT_MODEL), "cannot see images"),
    (("short", VISION_MODEL, "fp32", 10**7), "Max new tokens"),
])
def test_bad_batch_requests_get_a_clear_message(client, uploads, args, message):
    files = [] if not args else [handle_file(str(uploads[0][0]))]
    with pytest.raises(AppError, match=message):
        client.predict(files, *args, api_name="/caption_batch")
