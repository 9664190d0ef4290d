import json
import time
import uuid

import httpx
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from core.finetune.jobs import output_root
from core.finetune.runs import INTERRUPTED
from core.paths import ASSETS
from tests.conftest import TEXT_MODEL

LORA_TASK = "LoRA chat adapter (JSONL messages)"
CLASSIFY_TASK = "Classifier (text -> label)"


def test_lora_trained_in_the_tab_becomes_a_chat_model(client):
    data = handle_file(str(ASSETS / "data" / "instructions.jsonl"))
    status, _plot, *_ = client.predict(data, LORA_TASK, "", "", TEXT_MODEL, 1, 5e-3, 40, 0.8, api_name="/finetune")
    assert status.startswith("**Done") and "perplexity" in status
    message = client.predict(TEXT_MODEL, api_name="/finetune_use_in_chat")
    model_id = message.split("**")[1]
    assert model_id.startswith("finetuned/run-")
    answer = client.predict("Sentiment of this headline: Acme shares surge", model=model_id, precision="fp32",
                            max_new_tokens=8, temperature=0, api_name="/chat")
    assert answer.strip()


def test_single_class_file_is_refused_with_a_readable_message(client, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("text,label\nup,pos\ndown,pos\n", encoding="utf-8")
    with pytest.raises(AppError, match="single label"):
        client.predict(handle_file(str(path)), CLASSIFY_TASK, "text", "label", TEXT_MODEL, 1, 1e-3, 0, 0.8,
                       api_name="/finetune")


def test_closing_the_page_stops_its_fine_tune_and_sets_the_result_aside(app_url):
    """A raw browser-like session: join /finetune, watch it start, drop the connection; the run must end."""
    interrupted = output_root() / INTERRUPTED
    before = set(interrupted.glob("run-*"))
    with httpx.Client(base_url=app_url, timeout=60) as http:
        fn = next(d["id"] for d in http.get("config").json()["dependencies"] if d.get("api_name") == "finetune")
        path = http.post("gradio_api/upload", files={"files": ("c.jsonl", (ASSETS / "data" / "instructions.jsonl")
                                                                .read_bytes())}).json()[0]
        data = [{"path": path, "meta": {"_type": "gradio.FileData"}}, LORA_TASK, "", "", TEXT_MODEL, 100, 5e-3,
                200, 0.8]
        session = uuid.uuid4().hex
        http.post("gradio_api/queue/join", json={"data": data, "fn_index": fn, "session_hash": session,
                                                 "event_data": None, "trigger_id": None}).raise_for_status()
        with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as events:
            for line in events.iter_lines():
                assert "process_completed" not in line, line  # 100 epochs cannot be done yet
                if "Training" in line and "step" in line:
                    break  # training has started: now the page goes away
    deadline = time.monotonic() + 120
    while not set(interrupted.glob("run-*")) - before and time.monotonic() < deadline:
        time.sleep(0.5)
    (folder,) = set(interrupted.glob("run-*")) - before
    assert "disconnected" in json.loads((folder / "finetune.json").read_text())["interrupted"]


LEGEND = "id => [...document.querySelectorAll(`#${id} svg .role-legend-label text`)].map(t => t.textContent)"
# Lines actually drawn (a path with at least one segment), per series.
DRAWN = ("id => [...document.querySelectorAll(`#${id} svg .plot_marks path`)]"
         ".filter(p => /L/.test(p.getAttribute('d') || '')).length")
# Legend labels outside the plot's own box (clipped).
CLIPPED = """id => { const box = document.getElementById(id).getBoundingClientRect();
  return [...document.querySelectorAll(`#${id} svg .role-legend-label text`)].filter(t => {
    const r = t.getBoundingClientRect(); return r.bottom > box.bottom || r.right > box.right; })
    .map(t => t.textContent); }"""


def train_in_browser(page, task: str, rows: str, epochs: str) -> None:
    page.get_by_text(task).click()
    page.click("#finetune-example")
    page.wait_for_selector("#finetune-file a", timeout=30_000)
    for elem_id, value in (("finetune-rows", rows), ("finetune-epochs", epochs)):
        page.fill(f"#{elem_id} input", value)
        page.press(f"#{elem_id} input", "Tab")
    before = page.inner_text("#finetune-status")  # a previous run's "Done" names another folder
    page.click("#finetune-train")
    page.wait_for_function("s => { const t = document.querySelector('#finetune-status').innerText;"
                           " return t.includes('Done') && t !== s; }", arg=before, timeout=300_000)
    page.wait_for_selector("#finetune-download", state="visible", timeout=30_000)


@pytest.mark.browser
def test_browser_fine_tune_plots_held_out_metrics_shows_only_its_fields_and_downloads_a_zip(app_url, tmp_path):
    import zipfile

    from tests.ui.test_browser import SHOTS, open_page

    with open_page(app_url, tab="tab-finetune", ready="#finetune-task") as page:
        assert page.is_visible("#finetune-freeze") and page.is_visible("#finetune-label-col")
        assert not page.is_visible("#finetune-use")
        train_in_browser(page, LORA_TASK, "40", "2")  # 36 chats: 6 steps, losses at 1 and 5, held-out 0, 3, 6
        for hidden in ("#finetune-freeze", "#finetune-label-col", "#finetune-probe", "#finetune-scores"):
            assert not page.is_visible(hidden), hidden
        assert page.is_visible("#finetune-use")
        page.wait_for_function(f"() => ({DRAWN})('finetune-loss') === 2", timeout=10_000)
        page.screenshot(path=str(SHOTS / "finetune-lora.png"), full_page=True)
        assert page.evaluate(LEGEND, "finetune-loss") == ["training loss", "held-out loss"]
        assert page.evaluate(CLIPPED, "finetune-loss") == []
        with page.expect_download() as download:
            page.click("#finetune-download")
        names = zipfile.ZipFile(download.value.path()).namelist()
        assert {"adapter_config.json", "adapter_model.safetensors", "finetune.json"} <= set(names), names

        train_in_browser(page, CLASSIFY_TASK, "60", "2")  # an evaluation after each epoch: two points
        assert page.is_visible("#finetune-probe") and not page.is_visible("#finetune-use")
        page.wait_for_function(f"() => ({DRAWN})('finetune-scores') === 2", timeout=10_000)
        page.screenshot(path=str(SHOTS / "finetune-classifier.png"), full_page=True)
        assert page.evaluate(LEGEND, "finetune-scores") == ["held-out accuracy", "held-out macro-F1"]
        assert page.evaluate(LEGEND, "finetune-loss") == ["training loss", "held-out loss"]
        assert page.evaluate(CLIPPED, "finetune-scores") == []
        with page.expect_download() as download:
            page.click("#finetune-download")
        assert "config.json" in zipfile.ZipFile(download.value.path()).namelist()
