"""A person's path through the page, in Debian's chromium (never a downloaded browser)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

SHOTS = Path(os.environ.get("PLAYGROUND_SCREENSHOTS", "/tmp/playground-screenshots"))
SHOTS.mkdir(parents=True, exist_ok=True)

pytestmark = pytest.mark.browser


@contextmanager
def open_page(app_url: str, tab: str | None = None, ready: str = "#chat-input textarea") -> Iterator[Any]:
    """The app in Debian's chromium, on the given tab (its elem_id), once `ready` is on screen."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run scripts/install_chromium.sh (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        if tab:
            page.click(f"#{tab}-button")
        page.wait_for_selector(ready, timeout=30_000)
        yield page
        browser.close()


@pytest.fixture(scope="module")
def page(app_url):
    with open_page(app_url) as opened:
        yield opened


def test_chat_streams_an_answer_and_stop_ends_it(page):
    # qwen2-tiny, greedy, no repetition penalty: its answer to this prompt loops past 600 tokens without eos,
    # so Stop always lands mid-answer (deepseek-v3-tiny ends this one by itself after 64 tokens)
    page.click("#chat-model input")
    page.get_by_role("option", name="bundled/qwen2-tiny").click()
    page.get_by_text("Sampling").click()
    page.fill("#chat-max-new input[type=number]", "2000")  # long enough that Stop lands mid-answer
    page.press("#chat-max-new input[type=number]", "Enter")
    page.fill("#chat-temperature input[type=number]", "0")  # greedy: the tiny model loops instead of ending
    page.press("#chat-temperature input[type=number]", "Enter")
    page.fill("#chat-rep input[type=number]", "1")
    page.press("#chat-rep input[type=number]", "Enter")
    page.fill("#chat-input textarea", "Explain the while statement.")
    page.click("#chat-send")
    bot = page.locator("#chat-history .bot").first
    bot.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => { const b = document.querySelectorAll('#chat-history .bot'); "
        "return b.length && b[b.length - 1].innerText.trim().length > 0; }", timeout=30_000)
    page.click("#chat-stop")
    page.wait_for_selector("#chat-history >> text=stopped", timeout=30_000)
    generated = int(re.search(r"(\d+) tokens", page.inner_text("#chat-history")).group(1))
    assert 0 < generated < 2000
    page.screenshot(path=str(SHOTS / "chat.png"), full_page=True)
    meter = page.inner_text("#chat-meter")
    assert "Context" in meter and "/ 4,096 tokens" in meter
    assert page.is_enabled("#chat-input textarea")


def test_resources_tab_lists_the_resident_model_and_the_budget(page):  # after the chat test
    page.click("#tab-resources-button")
    page.wait_for_function("() => document.querySelector('#resources-models').innerText"
                           ".includes('bundled/qwen2-tiny')", timeout=30_000)  # loaded by the chat test
    assert "Memory budget" in page.inner_text("#resources-summary")
    page.screenshot(path=str(SHOTS / "resources.png"), full_page=True)


def test_a_refused_message_comes_back_into_the_box_enabled(page):
    page.click("#tab-chat-button")
    page.fill("#chat-seed input[type=number]", "1e30")  # what gradio used to answer with a bare "Error"
    page.press("#chat-seed input[type=number]", "Enter")
    page.fill("#chat-input textarea", "Please keep this text.")
    page.click("#chat-send")
    page.wait_for_selector("text=seed must be at most", timeout=30_000)
    page.wait_for_function("() => document.querySelector('#chat-input textarea').value === 'Please keep this text.'",
                           timeout=30_000)
    assert page.is_enabled("#chat-input textarea")
    page.fill("#chat-seed input[type=number]", "0")
    page.press("#chat-seed input[type=number]", "Enter")
