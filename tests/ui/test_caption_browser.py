"""A person in the Caption tab: uploads an image, sees the caption stream in, asks a follow-up."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from scripts.shapes import ShapeScene, draw_scene, parse_attributes
from tests.ui.test_browser import SHOTS, open_page, set_number

pytestmark = pytest.mark.browser
SCENE = ShapeScene("square", "green", "large", 1, "right", "plain")
LAST_BOT = ("() => { const b = document.querySelectorAll('#caption-history .bot'); "
            "return b.length >= {n} && b[b.length - 1].innerText.trim().length > 0; }")

METRICS_LINES = "[...document.querySelectorAll('#caption-history .bot')].filter(b => b.innerText.includes('tok/s'))"


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


def test_a_follow_up_attaches_another_image(page, tmp_path):
    """After the green square's caption, a follow-up brings a blue circle: the caption names blue."""
    path = tmp_path / "blue_circle.png"
    draw_scene(ShapeScene("circle", "blue", "large", 1, "center", "plain"), 128, 3).save(path)
    page.set_input_files("#caption-attach input[type=file]", str(path))
    page.wait_for_selector("#caption-attach img", timeout=30_000)
    finished = METRICS_LINES + ".length"
    answers = page.evaluate(f"() => {finished}")
    page.fill("#caption-question textarea", "Caption this image.")
    page.click("#caption-ask")
    page.wait_for_function(f"n => {finished} > n && [...document.querySelectorAll('#caption-history .bot')]"
                           ".at(-1).innerText.includes('tok/s')", arg=answers, timeout=120_000)
    last = bot_texts(page)[-1].split("\n\n")[0]  # the answer, without its metrics line
    assert "blue" in last.lower() and "green" not in last.lower(), last
    assert page.locator("#caption-history .user img").count() >= 2  # the attached image shows in its turn
    page.wait_for_selector("#caption-attach img", state="detached", timeout=30_000)  # emptied once sent


def drawings(folder: Path, colours: tuple[str, ...], shape: str = "circle") -> list[Path]:
    """One large centred shape per colour, saved as <colour>.png in `folder`."""
    paths = []
    for i, colour in enumerate(colours):
        paths.append(folder / f"{colour}.png")
        draw_scene(ShapeScene(shape, colour, "large", 1, "center", "plain"), 96, i).save(paths[-1])
    return paths


def zipped(path: Path, members: list[Path], extra: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for member in members:
            archive.write(member, member.name)
        for name, text in (extra or {}).items():
            archive.writestr(name, text)
    return path


def upload_batch(page, paths: list[Path], per_pass: int) -> None:
    """Open "Many images" (once), set the batch size, upload the files and wait until each is listed."""
    if not page.is_visible("#batch-files"):
        page.click("#batch-section button")
    set_number(page, "batch-size", str(per_pass))
    if page.is_visible("#batch-files td.filename"):  # the last run's files: a new upload would add to them
        page.click('#batch-files button[aria-label="Clear"]')
        page.wait_for_selector("#batch-files td.filename", state="detached", timeout=10_000)
    page.set_input_files("#batch-files input[type=file]", [str(p) for p in paths])
    for path in paths:  # the list shows each name as stem + extension spans; aria-label holds the whole name
        page.wait_for_selector(f'#batch-files td[aria-label="{path.name}"]', timeout=120_000)


def table_rows(page) -> list[list[str]]:
    """The table's rendered rows (gradio's Dataframe draws rows in view only: fine for a dozen)."""
    return page.evaluate("() => [...document.querySelectorAll('#batch-table [role=row].virtual-row')]"
                         ".map(r => [...r.querySelectorAll('[role=gridcell]')].map(c => c.innerText.trim()))")


def download(page, elem_id: str, name: str) -> str:
    link = page.locator(f'#{elem_id} a[download="{name}"]')
    link.wait_for(timeout=300_000)  # 2 shared cores can be slow
    response = page.request.get(link.get_attribute("href"))
    assert response.ok, response.status
    return response.text()


def test_many_images_and_a_zip_fill_the_table_and_download_as_csv_and_jsonl(page, tmp_path):
    loose = drawings(tmp_path, ("red", "blue", "yellow"))
    (tmp_path / "zip").mkdir()
    inner = drawings(tmp_path / "zip", ("green", "purple"), "square")
    archive = zipped(tmp_path / "squares.zip", inner, {"readme.txt": "not an image"})
    (tmp_path / "notes.png").write_text("not an image")
    upload_batch(page, [*loose, archive, tmp_path / "notes.png"], per_pass=4)
    page.click("#batch-run")
    rows = {r["file"]: r for r in csv.DictReader(io.StringIO(download(page, "batch-csv", "captions.csv")))}
    lines = [json.loads(line) for line in download(page, "batch-jsonl", "captions.jsonl").splitlines()]
    assert [line["file"] for line in lines] == list(rows)
    captioned = {name: row for name, row in rows.items() if row["caption"]}
    assert len(captioned) == 5 and len(rows) == 7, rows
    for colour in ("red", "blue", "yellow", "green", "purple"):
        name = next(n for n in captioned if colour in n)
        assert colour in captioned[name]["caption"].lower() and int(captioned[name]["tokens"]) > 0
        assert float(captioned[name]["seconds"]) > 0
    assert "not an image" in rows["notes.png"]["error"]
    shown = {r[0]: r for r in table_rows(page)}
    assert set(shown) == set(rows) and all(shown[n][1] == captioned[n]["caption"] for n in captioned)
    assert "5 captioned, 2 not captioned" in page.inner_text("#batch-status")
    page.screenshot(path=str(SHOTS / "caption_batch.png"), full_page=True)


def test_many_images_stream_in_and_stop_ends_the_run(page, tmp_path):
    colours = ("red", "blue", "yellow", "green", "purple") * 20
    images = []
    for i, colour in enumerate(colours):  # 100 files (the most one request takes), one pass each: Stop lands mid-run
        # even on a fast machine (18 files all finished before the click landed in CI)
        images.append(tmp_path / f"{i:02d}_{colour}.png")
        draw_scene(ShapeScene("triangle", colour, "large", 1, "center", "plain"), 96, i).save(images[-1])
    archive = zipped(tmp_path / "many.zip", images)
    upload_batch(page, [archive], per_pass=1)
    page.evaluate("""() => { const watch = setInterval(() => {  // Stop from the page, as soon as one file is done
        if (/^[1-9]\\d* \\/ 100 files done/m.test(document.querySelector('#batch-status').innerText)) {
            clearInterval(watch); document.querySelector('#batch-stop').click(); window.batchStopped = true;
        } }, 5); }""")
    page.click("#batch-run")
    page.wait_for_function("() => window.batchStopped && "  # the previous test's summary is not this run's
                           "document.querySelector('#batch-status').innerText.includes('not captioned')",
                           timeout=120_000)
    rows = list(csv.DictReader(io.StringIO(download(page, "batch-csv", "captions.csv"))))
    assert [r["file"] for r in rows] == [p.name for p in images]
    stopped = [r for r in rows if "stopped" in r["caption"] + r["error"]]
    done = int(page.inner_text("#batch-status").split(" captioned")[0].split()[-1])
    assert stopped and 1 <= done < 100 and done + len(stopped) >= 100, rows


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
