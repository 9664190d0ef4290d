import json
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError

from core.generation.sampling import SamplingParams
from core.quant.comparison import ComparisonRun, PrecisionResult
from tests.conftest import DENSE_MODEL, TEXT_MODEL
from tests.ui.test_browser import SHOTS, open_page
from ui.quant_tables import bits_label, notes_markdown


def test_compare_endpoint_measures_each_precision_against_full(client):
    run = client.predict(DENSE_MODEL, ["fp32", "int8"], "What is a tuple?", 8, 0, api_name="/compare")
    rows = {r["precision"]: r for r in run["results"]}
    assert set(rows) == {"fp32", "int8"} and run["reference_precision"] == "fp32"
    assert rows["fp32"]["kl_mean"] == pytest.approx(0, abs=1e-6) and rows["fp32"]["top1_agreement"] == 1
    assert rows["int8"]["memory_bytes"] < rows["fp32"]["memory_bytes"] and rows["int8"]["quantized_share"] > 0.4
    assert rows["int8"]["output"] and run["params"]["seed"] == 0 and "torch" in run["versions"]


def test_cpu_int4_row_says_its_head_is_stored_in_8_bits(client, hardware):
    if hardware.device != "cpu":
        pytest.skip("CPU rule: CUDA int4 keeps its head in full precision")
    run = client.predict(DENSE_MODEL, ["fp32", "int4"], "What is a tuple?", 4, 0, api_name="/compare")
    int4 = PrecisionResult(**{k: v for k, v in run["results"][1].items() if k != "quality"})
    assert list(int4.stored_as) == ["other linear layers int4", "lm_head int8"]
    assert "lm_head" not in int4.full_precision_parts and bits_label(int4) == "4 (lm_head 8)"
    notes = notes_markdown(ComparisonRun(DENSE_MODEL, "What is a tuple?", SamplingParams(), "fp32", "cpu", 0, (int4,)))
    assert "quantized as: other linear layers int4, lm_head int8" in notes


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


def test_the_tab_names_precisions_not_offered_here_and_why(registry, monkeypatch):
    import importlib.util

    from ui.controls import unavailable_note

    assert "GGUF" not in unavailable_note(registry, DENSE_MODEL) or importlib.util.find_spec("llama_cpp") is None
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    note = unavailable_note(registry, DENSE_MODEL)
    assert "GGUF Q4_0 (llama.cpp): llama-cpp-python is not installed" in note and "make install-dev" in note


# Words of header cells that wrap inside the word (two line boxes for one word), per table.
BROKEN_WORDS = """id => [...document.querySelectorAll(`#${id} th`)].flatMap(th => {
  const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT), broken = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.textContent.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
      if (new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1) broken.push(m[0]);
    }
  }
  return broken; })"""
# Cells whose right edge lies past the table's visible box (reached only by scrolling sideways).
OFF_SCREEN = """id => { const box = document.getElementById(id).getBoundingClientRect();
  return [...document.querySelectorAll(`#${id} th`)].filter(c => c.getBoundingClientRect().right > box.right + 1)
    .map(c => c.innerText); }"""
# Pairs of x-axis labels of a chart whose boxes overlap.
OVERLAPS = """id => { const b = [...document.querySelectorAll(`#${id} svg .role-axis-label text`)]
    .map(t => [t.textContent, t.getBoundingClientRect()]), hits = [];
  for (let i = 0; i < b.length; i++) for (let j = i + 1; j < b.length; j++) {
    const [p, q] = [b[i][1], b[j][1]];
    if (p.left < q.right && q.left < p.right && p.top < q.bottom && q.top < p.bottom)
      hits.push(b[i][0] + '/' + b[j][0]);
  }
  return hits; }"""


@pytest.mark.browser
def test_browser_comparison_is_readable_at_1440_px(app_url):
    """Grouped tables that fit, headers wrapped between words, short chart labels apart, KL explained,
    TTFT never below the prefill it contains, and a line on what is within noise."""
    with open_page(app_url, tab="tab-quant", ready="#quant-precisions") as page:
        page.set_viewport_size({"width": 1440, "height": 900})
        for box in page.locator("#quant-precisions input[type=checkbox]").all():
            if box.is_checked():
                box.uncheck()
        page.locator("#quant-precisions label", has_text="fp32").first.click()
        page.locator("#quant-precisions label", has_text="int8").first.click()
        page.fill("#quant-max-new input[type=number]", "8")
        page.press("#quant-max-new input[type=number]", "Enter")
        page.click("#quant-compare")
        try:
            page.wait_for_selector("#quant-json a[href$='.json']", timeout=180_000)  # the run is done
            page.wait_for_selector("#quant-chart-2 svg .role-axis-label text", timeout=30_000)
        finally:
            page.screenshot(path=str(SHOTS / "quantization.png"), full_page=True)
        for table in ("quant-quality", "quant-speed", "quant-memory"):
            assert page.evaluate(BROKEN_WORDS, table) == [], table
            assert page.evaluate(OFF_SCREEN, table) == [], table
            assert page.locator(f"#{table} th").count() <= 12
        headers = {t.strip() for t in page.locator("#quant-quality th").all_inner_texts()}
        assert {"KL mean", "Δ ppl %", "same top-1 %"} <= headers
        for chart in range(3):
            assert page.evaluate(OVERLAPS, f"quant-chart-{chart}") == [], chart
        assert "Kullback-Leibler" in page.inner_text("#quant-legend")
        assert "within noise" in page.inner_text("#quant-noise")
        rows = page.evaluate("() => [...document.querySelectorAll('#quant-speed .virtual-row')]"
                             ".map(r => [...r.querySelectorAll('.body-cell')].map(c => c.innerText.trim()))")
        timings = {row[0]: (float(row[2]), float(row[3])) for row in rows}  # prefill s, TTFT s
        assert set(timings) == {"fp32 (ref)", "int8"}
        assert all(ttft >= prefill for prefill, ttft in timings.values()), timings
        assert "fp32 (full)" in page.inner_text("#quant-outputs")


def test_exports_hold_the_whole_run(registry, cfg):
    from core.quant.report import to_markdown
    from core.serving.service import Service
    from ui.quantize import export_files, run_comparison

    run = run_comparison(Service(registry, cfg.limits), cfg, DENSE_MODEL, ["fp32", "int8"], "Hello", 4, 0)
    json_path, md_path = export_files(run)
    data = json.loads(Path(json_path).read_text())
    assert data["prompt"] == "Hello" and len(data["table"]) == 2 and data["hardware"]
    markdown = Path(md_path).read_text()
    assert markdown == to_markdown(run) and "## int8 (optimum-quanto, weight-only)" in markdown
    assert markdown.count("\n| ") == 3  # header + 2 precision rows
