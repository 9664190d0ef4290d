"""The Quantization tab's "Captions at each precision": the bundled DeepSeek-VL's captions side by side."""

from __future__ import annotations

import pytest

from core.config import LimitsConfig
from core.serving.service import Service
from tests.conftest import VISION_MODEL
from tests.ui.test_browser import SHOTS, open_page
from ui.vision_compare import EXAMPLES, caption_comparison, side_by_side_html, summary_rows


def test_example_images_captioned_at_each_precision_side_by_side(registry, tmp_path):
    service = Service(registry, LimitsConfig())
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    names, columns, refused = caption_comparison(service, VISION_MODEL, ["int8", "fp32"],
                                                 [*map(str, EXAMPLES[:2]), str(bad)])
    assert names == [p.name for p in EXAMPLES[:2]] and len(refused) == 1 and "notes.png" in refused[0]
    page = side_by_side_html(names, columns)
    assert page.count("<tr>") == 3 and all(c.precision.label in page for c in columns)
    assert all(caption in page for column in columns for caption in column.captions)
    summary = summary_rows(columns)
    assert summary[0][2] == "reference" and summary[1][2].endswith("%") and summary[1][1] > 0


def test_no_upload_compares_the_bundled_examples(registry):
    names, columns, _ = caption_comparison(Service(registry, LimitsConfig()), VISION_MODEL, ["fp32"], None)
    assert names == [p.name for p in EXAMPLES] and len(columns) == 1 and len(columns[0].captions) == len(EXAMPLES)


@pytest.mark.browser
def test_the_accordion_shows_captions_per_precision_in_the_browser(app_url):
    with open_page(app_url, tab="tab-quant", ready="#quant-precisions") as page:
        page.click("#vision-compare button")  # open the accordion
        page.click("#vision-compare-run")
        page.wait_for_selector("#vision-compare-captions", timeout=300_000)
        table = page.inner_text("#vision-compare-output")
        assert all(p.name in table for p in EXAMPLES) and "int8" in table.lower() and "int4" in table.lower()
        summary = page.inner_text("#vision-compare-summary")
        assert "reference" in summary and "%" in summary
        page.screenshot(path=str(SHOTS / "vision_compare.png"), full_page=True)
