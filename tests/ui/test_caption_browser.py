"""A person in the Caption tab: uploads an image, sees the caption stream in, asks a follow-up."""

from __future__ import annotations

import pytest

from scripts.shapes import ShapeScene, draw_scene, parse_attributes
from tests.ui.test_browser import SHOTS, open_page

pytestmark = pytest.mark.browser
SCENE = ShapeScene("square", "green", "large", 1, "right", "plain")
LAST_BOT = ("() => { const b = document.querySelectorAll('#caption-history .bot'); "
            "return b.length >= {n} && b[b.length - 1].innerText.trim().length > 0; }")


@pytest.fixture(scope="module")
def page(app_url):
    with open_page(app_url, tab="tab-caption", ready="#caption-image") as opened:
        yield opened


def bot_texts(page) -> list[str]:
    return [t.strip() for t in page.locator("#caption-history .bot").all_inner_texts() if t.strip()]


def test_upload_caption_then_follow_up(page, tmp_path):
    path = tmp_path / "green_square.png"
    draw_scene(SCENE, 128, 9).save(path)
    page.set_input_files("#caption-image input[type=file]", str(path))
    page.wait_for_selector("#caption-image img", timeout=30_000)
    page.click("#caption-run")
    page.wait_for_function(LAST_BOT.replace("{n}", "1"), timeout=60_000)
    page.wait_for_selector("#caption-history >> text=tok/s", timeout=60_000)  # the per-answer metrics line
    got = parse_attributes(bot_texts(page)[0])
    assert all(got[a] == value for a, value in SCENE.attributes("short").items()), got
    page.fill("#caption-question textarea", "What colour is the shape?")
    page.click("#caption-ask")
    page.wait_for_function("() => document.querySelector('#caption-history').innerText.includes('Green.')",
                           timeout=60_000)
    page.screenshot(path=str(SHOTS / "caption.png"), full_page=True)
    assert "Context" in page.inner_text("#caption-meter")


def test_on_a_phone_the_picker_button_and_answer_share_the_first_screen(page, tmp_path):  # last: resizes
    path = tmp_path / "green_square.png"
    draw_scene(SCENE, 128, 9).save(path)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.click("#tab-caption-button")
    page.wait_for_selector("#caption-image", timeout=30_000)
    page.wait_for_timeout(500)
    for selector in ("#caption-model", "#caption-precision", "#caption-run", "#caption-image"):
        box = page.locator(selector).bounding_box()
        assert box and 0 <= box["y"] and box["y"] + box["height"] <= 844 and box["x"] + box["width"] <= 390, (
            selector, box)
    page.set_input_files("#caption-image input[type=file]", str(path))
    page.wait_for_selector("#caption-image img", timeout=30_000)
    page.locator("#caption-run").dispatch_event("click")  # a tap: no scrolling on the person's behalf
    page.wait_for_selector("#caption-history >> text=tok/s", timeout=60_000)
    page.screenshot(path=str(SHOTS / "phone-caption.png"))
    answer = page.locator("#caption-history .bot").first.bounding_box()
    assert page.evaluate("window.scrollY") == 0
    assert answer and answer["y"] + 48 <= 844, answer  # at least its first two lines on screen
