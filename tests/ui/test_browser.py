"""A person's path through the page, in Debian's chromium (never a downloaded browser)."""

from __future__ import annotations

import json
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
        page.wait_for_timeout(500)  # let the page's load event (saved conversations) land before clicking
        yield page
        browser.close()


@pytest.fixture(scope="module")
def page(app_url):
    with open_page(app_url) as opened:
        yield opened


def last_bot_text(page) -> str:
    """The last answer's text (metrics lines left out)."""
    return page.evaluate("() => { const b = [...document.querySelectorAll('#chat-history [data-testid=bot]')]"
                         ".filter(e => !e.innerText.includes(' tokens ·'));"
                         " return b.length ? b[b.length - 1].innerText : ''; }")


def set_number(page, elem_id: str, value: str) -> None:
    page.fill(f"#{elem_id} input[type=number]", value)
    page.press(f"#{elem_id} input[type=number]", "Enter")


def wait_for_new_seed(page, seed: str) -> str:
    """Wait until the last answer is finished with a seed other than `seed`; that seed."""
    page.wait_for_function("s => { const m = document.querySelector('#chat-history').innerText.match(/seed (\\d+)/g);"
                           " return m && m[m.length - 1] !== 'seed ' + s; }", arg=seed, timeout=60_000)
    page.wait_for_selector("#chat-send", state="visible", timeout=30_000)
    return re.findall(r"seed (\d+)", page.inner_text("#chat-history"))[-1]


def test_enter_sends_shift_enter_adds_a_line_escape_stops(page):
    # qwen2-tiny, greedy, no repetition penalty: its answer to this prompt loops past 600 tokens without eos,
    # so Stop always lands mid-answer (deepseek-v3-tiny ends this one by itself after 64 tokens)
    page.click("#chat-model input")
    page.get_by_role("option", name="bundled/qwen2-tiny").click()
    page.get_by_text("Sampling").click()
    set_number(page, "chat-max-new", "2000")  # long enough that Stop lands mid-answer
    set_number(page, "chat-temperature", "0")  # greedy: the tiny model loops instead of ending
    set_number(page, "chat-rep", "1")
    box = page.locator("#chat-input textarea")
    box.fill("Explain the while")
    box.press("Shift+Enter")
    box.type("statement.")
    assert box.input_value() == "Explain the while\nstatement." and page.locator("#chat-history .user").count() == 0
    box.press("Enter")
    page.wait_for_function(
        "() => { const b = document.querySelectorAll('#chat-history .bot'); "
        "return b.length && b[b.length - 1].innerText.trim().length > 0; }", timeout=30_000)
    assert page.is_visible("#chat-stop") and not page.is_visible("#chat-send")  # Send became Stop
    page.keyboard.press("Escape")
    page.wait_for_selector("#chat-history >> text=stopped", timeout=30_000)
    generated = int(re.search(r"(\d+) tokens", page.inner_text("#chat-history")).group(1))
    assert 0 < generated < 2000
    page.wait_for_selector("#chat-send", state="visible", timeout=10_000)
    assert not page.is_visible("#chat-stop")
    page.screenshot(path=str(SHOTS / "chat.png"), full_page=True)
    meter = page.inner_text("#chat-meter")
    assert "Context" in meter and "/ 4,096 tokens" in meter
    assert page.is_enabled("#chat-input textarea") and box.input_value() == ""


def test_an_error_leaves_conversation_meter_and_typed_text(page):  # after the keyboard test
    conversation, meter = page.inner_text("#chat-history"), page.inner_text("#chat-meter")
    page.click("#chat-model input")
    page.get_by_role("option", name=re.compile("DeepSeek-R1-Distill-Qwen-1.5B")).click()  # offline: cannot load
    box = page.locator("#chat-input textarea")
    box.fill("Hello again")
    box.press("Enter")
    page.wait_for_selector(".toast-body >> text=not reachable", timeout=30_000)
    page.wait_for_selector("#chat-send", state="visible", timeout=10_000)
    assert page.inner_text("#chat-history") == conversation and page.inner_text("#chat-meter") == meter
    assert box.input_value() == "Hello again" and page.is_enabled("#chat-input textarea")
    assert page.locator("#chat-history .error, #chat-meter .error, #chat-input .error").count() == 0
    page.screenshot(path=str(SHOTS / "chat-error.png"), full_page=True)
    page.click("#chat-model input")
    page.get_by_role("option", name="bundled/qwen2-tiny").click()


def plain(text: str) -> str:
    """Text with Markdown's emphasis marks dropped (not turned into spaces: a cut answer ending in '"__dict' renders
    the marks as typed, the continued one renders '"__dict__"' as a bold 'dict') and whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"[_*`]+", "", text)).strip()


def test_regenerate_samples_anew_and_undo_gives_the_message_back(page):  # after the error test
    set_number(page, "chat-max-new", "24")
    set_number(page, "chat-temperature", "1.2")
    box = page.locator("#chat-input textarea")
    box.fill("Tell me a story.")
    box.press("Enter")
    page.wait_for_selector("#chat-history >> text=/seed \\d+/", timeout=60_000)
    page.wait_for_selector("#chat-send", state="visible", timeout=30_000)  # the first answer finished: whole
    first_seed = re.search(r"seed (\d+)", page.inner_text("#chat-history")).group(1)
    first = last_bot_text(page)
    page.click("#chat-regenerate")
    second_seed = wait_for_new_seed(page, first_seed)
    assert first and last_bot_text(page) != first  # a new seed, a new sample
    assert page.inner_text("#chat-history").count("Tell me a story.") == 1  # replaced, not appended
    cut = last_bot_text(page)
    page.click("#chat-continue")
    wait_for_new_seed(page, second_seed)
    continued = last_bot_text(page)
    # the same answer, longer (compared as plain text: the chat renders Markdown, where _x_ becomes italic x)
    assert plain(continued).startswith(plain(cut)) and len(continued) > len(cut)
    page.click("#chat-undo")
    page.wait_for_function("() => !document.querySelector('#chat-history').innerText.includes('Tell me a story.')",
                           timeout=10_000)
    assert box.input_value() == "Tell me a story."


def test_reload_keeps_the_conversation_and_export_keeps_the_like(page):  # after the regenerate test
    page.locator("#chat-history button[aria-label='Like']").last.click()
    page.wait_for_timeout(500)
    page.reload()
    page.wait_for_selector("#chat-history", timeout=30_000)
    page.wait_for_function("() => document.querySelector('#chat-history').innerText.includes('Explain the while')",
                           timeout=30_000)
    assert "Explain the while" in page.input_value("#chat-conversation input")  # titled by its first message
    with page.expect_download() as download:
        page.click("#chat-export-json")
    saved = json.loads(Path(download.value.path()).read_text())["conversations"][0]
    assert saved["title"].startswith("Explain the while") and "Like" in saved["feedback"].values()
    page.click("#chat-new")
    page.wait_for_function("() => !document.querySelector('#chat-history').innerText.includes('Explain')")
    page.click("#chat-conversation input")
    page.get_by_role("option", name=re.compile("Explain the while")).click()
    page.wait_for_function("() => document.querySelector('#chat-history').innerText.includes('Explain the while')",
                           timeout=10_000)
    page.screenshot(path=str(SHOTS / "chat-saved.png"), full_page=True)


def test_a_document_goes_with_one_message_as_a_chip_and_clear_removes_it(page, tmp_path):  # after reload
    page.get_by_text("Sampling").click()
    set_number(page, "chat-max-new", "8")
    page.get_by_text("Long text: attach or paste a document").click()
    doc = tmp_path / "notes.txt"
    doc.write_text("The quick brown fox jumps over the lazy dog. " * 40)
    page.set_input_files("#chat-doc-file input[type=file]", str(doc))
    page.wait_for_function("() => document.querySelector('#chat-document textarea').value.includes('quick brown')",
                           timeout=10_000)
    page.click("#chat-new")
    box = page.locator("#chat-input textarea")
    box.fill("Summarise.")
    box.press("Enter")
    page.wait_for_selector("#chat-history >> text=/Document · [\\d,]+ tokens/", timeout=60_000)
    page.wait_for_selector("#chat-send", state="visible", timeout=30_000)
    doc_tokens = int(re.search(r"Document · ([\d,]+) tokens", page.inner_text("#chat-history")).group(1)
                     .replace(",", ""))
    assert page.input_value("#chat-document textarea") == ""  # sent with that message only
    box.fill("Hi")
    box.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#chat-history [data-testid=user]').length >= 3",
                           timeout=60_000)
    page.wait_for_selector("#chat-send", state="visible", timeout=30_000)
    page.screenshot(path=str(SHOTS / "chat-document.png"), full_page=True)
    meter_tokens = int(re.search(r"Context ([\d,]+) /", page.inner_text("#chat-meter")).group(1).replace(",", ""))
    assert meter_tokens < doc_tokens  # "Hi" did not carry the document again
    page.set_input_files("#chat-doc-file input[type=file]", str(doc))
    page.wait_for_function("() => document.querySelector('#chat-document textarea').value.length > 0")
    page.click("#chat-clear")
    page.wait_for_function("() => document.querySelector('#chat-document textarea').value === ''", timeout=10_000)
    assert "Document ·" not in page.inner_text("#chat-history")


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


def test_the_paperclip_beside_the_input_attaches_a_document_to_the_next_message(page, tmp_path):
    doc = tmp_path / "paperclip.md"
    doc.write_text("# Notes\nThe quick brown fox jumps over the lazy dog. " * 20)
    page.click("#chat-new")
    with page.expect_file_chooser() as chooser:  # the paperclip opens the file picker, as a person would use it
        page.click("#chat-attach")
    chooser.value.set_files(str(doc))
    page.wait_for_function("() => document.querySelector('#chat-attached').innerText.includes('Document attached')",
                           timeout=10_000)  # said beside the input, not only in the closed accordion
    box = page.locator("#chat-input textarea")
    box.fill("Summarise.")
    box.press("Enter")
    page.wait_for_selector("#chat-history >> text=/Document · [\\d,]+ tokens/", timeout=60_000)
    page.wait_for_selector("#chat-send", state="visible", timeout=30_000)
    assert "Document attached" not in page.inner_text("#chat-attached")  # sent: nothing waits any more
    assert page.input_value("#chat-document textarea") == ""


def test_on_a_phone_every_tab_and_the_chat_controls_show_without_scrolling(page):  # last: it resizes the page
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("#tab-chat-button")
    page.reload()
    page.wait_for_selector("#chat-input textarea", timeout=30_000)
    page.wait_for_timeout(500)
    on_screen = ["#chat-input textarea", "#chat-send", "#chat-model", "#chat-precision",
                 *(f"#tab-{tab}-button" for tab in ("chat", "caption", "quant", "finetune", "resources"))]
    for selector in on_screen:
        box = page.locator(selector).bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 844 and box["x"] + box["width"] <= 390, selector
    page.screenshot(path=str(SHOTS / "phone-chat.png"))
