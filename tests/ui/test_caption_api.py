"""/caption through gradio_client: an uploaded image streams its caption; bad uploads get clear messages."""

from __future__ import annotations

import struct
import zlib

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from scripts.shapes import ShapeScene, draw_scene, parse_attributes
from tests.conftest import TEXT_MODEL, VISION_MODEL

SCENE = ShapeScene("triangle", "blue", "small", 2, None, "gradient")


@pytest.fixture(scope="module")
def shapes_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("caption") / "two_blue_triangles.png"
    draw_scene(SCENE, 128, 3).save(path)
    return path


def test_caption_endpoint_streams_the_caption_of_an_uploaded_image(client, shapes_png):
    job = client.submit(handle_file(str(shapes_png)), "", "detailed", api_name="/caption")
    partials = list(job)
    assert len(partials) >= 2 and all(partials[i + 1].startswith(partials[i]) for i in range(len(partials) - 1))
    assert parse_attributes(partials[-1]) == SCENE.attributes("detailed")


def test_caption_endpoint_answers_a_question_about_the_image(client, shapes_png):
    assert client.predict(handle_file(str(shapes_png)), "What colour are the shapes?", api_name="/caption") == "Blue."


def upload_of(kind: str, good, folder):
    """A gradio_client upload: the good image, a text file named .png, a 30000 x 30000 PNG header, or nothing."""
    if kind == "text":
        (folder / "notes.png").write_text("not pixels")
        return handle_file(str(folder / "notes.png"))
    if kind == "bomb":
        def chunk(tag: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

        header = chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
        idat = chunk(b"IDAT", zlib.compress(b"\0" * 64))
        (folder / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + header + idat + chunk(b"IEND", b""))
        return handle_file(str(folder / "bomb.png"))
    return None if kind == "none" else handle_file(str(good))


@pytest.mark.parametrize("kind,args,message", [
    ("text", (), "not an image"),
    ("bomb", (), "pixels"),
    ("none", (), "Add an image"),
    ("good", ("", "short", TEXT_MODEL), "cannot see images"),
    ("good", ("", "poem"), "caption style"),
    ("good", ("", "short", VISION_MODEL, "fp32", 10**7), "Max new tokens"),
])
def test_bad_upload_or_setting_gets_a_clear_message_and_the_server_keeps_serving(client, shapes_png, tmp_path,
                                                                                  kind, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(upload_of(kind, shapes_png, tmp_path), *args, api_name="/caption")
    assert client.predict(handle_file(str(shapes_png)), "", "short", api_name="/caption").strip()
