import json
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError

from tests.conftest import DENSE_MODEL, TEXT_MODEL
from tests.ui.test_browser import SHOTS, open_page


def test_compare_endpoint_measures_each_precision_against_full(client):
    run = client.predict(DENSE_MODEL, ["fp32", "int8"], "What is a tuple?", 8, 0, api_name="/compare")
    rows = {r["precision"]: r for r in run["results"]}
    assert set(rows) == {"fp32", "int8"} and run["reference_precision"] == "fp32"
    assert rows["fp32"]["kl_mean"] == pytest.approx(0, abs=1e-6) and rows["fp32"]["top1_agreement"] == 1
    assert rows["int8"]["memory_bytes"] < rows["fp32"]["memory_bytes"] and rows["int8"]["quantized_share"] > 0.4
    assert rows["int8"]["output"] and run["params"]["seed"] == 0 and "torch" in run["versions"]


@pytest.mark.parametrize("args,message", [
    ((TEXT_MODEL, ["fp32"], "   "), "Type a prompt"),
    ((TEXT_MODEL, [], "hi"), "Tick at least one"),
    ((TEXT_MODEL, ["int3"], "hi"), "Unknown precision"),
    (("nope/model", ["fp32"], "hi"), "Unknown model"),
])
def test_compare_bad_input_gets_a_clear_message(client, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, 4, 0, api_name="/compare")


def test_unavailable_backend_row_says_why_instead_of_failing(client):
    run = client.predict(DENSE_MODEL, ["fp32", "bnb-nf4"], "hi", 4, 0, api_name="/compare")
    bnb = run["results"][1]
    assert "CUDA" in bnb["error"] and run["results"][0]["error"] is None


@pytest.mark.browser
def test_browser_compares_two_precisions_and_shows_table_and_chart(app_url):
    with open_page(app_url, tab="tab-quant", ready="#quant-precisions") as page:
        for box in page.locator("#quant-precisions input[type=checkbox]").all():
            if box.is_checked():
                box.uncheck()
        page.locator("#quant-precisions label", has_text="fp32").first.click()
        page.locator("#quant-precisions label", has_text="int8").first.click()
        checked = [b.is_checked() for b in page.locator("#quant-precisions input[type=checkbox]").all()]
        assert sum(checked) == 2
        page.fill("#quant-max-new input[type=number]", "8")
        page.press("#quant-max-new input[type=number]", "Enter")
        page.click("#quant-compare")
        try:
            page.wait_for_function("() => document.querySelector('#quant-table').innerText.includes('quanto')",
                                   timeout=180_000)
        finally:
            page.screenshot(path=str(SHOTS / "quantization.png"), full_page=True)
        page.wait_for_selector("#quant-json a[href$='.json']", timeout=30_000)
        page.wait_for_selector("#quant-chart-0 canvas, #quant-chart-0 svg", timeout=30_000)
        page.screenshot(path=str(SHOTS / "quantization.png"), full_page=True)
        assert "fp32 (full)" in page.inner_text("#quant-outputs")


def test_exports_hold_the_whole_run(registry, cfg):
    from core.quant.report import to_markdown
    from core.serving.service import Service
    from ui.quantize import export_files, run_comparison

    run = run_comparison(Service(registry, cfg.limits), DENSE_MODEL, ["fp32", "int8"], "Hello", 4, 0)
    json_path, md_path = export_files(run)
    data = json.loads(Path(json_path).read_text())
    assert data["prompt"] == "Hello" and len(data["table"]) == 2 and data["hardware"]
    markdown = Path(md_path).read_text()
    assert markdown == to_markdown(run) and "## int8 (optimum-quanto, weight-only)" in markdown
    assert markdown.count("\n| ") == 3  # header + 2 precision rows
