"""Page-wide styles: on a phone (390 px wide) tabs are compact and Chat's input shows without scrolling; table
headers wrap between words only."""

from __future__ import annotations

import gradio as gr

PHONE_CSS = """
#quant-quality th, #quant-speed th, #quant-memory th { word-break: normal !important; overflow-wrap: normal !important;
  hyphens: none !important; }
#quant-legend { font-size: 13px; }
@media (max-width: 640px) {
  [role=tablist] button { padding: 4px 7px !important; font-size: 13px !important; min-width: 0 !important; }
  #chat-history, #caption-history { height: 34vh !important; max-height: 34vh !important; }
}
"""


def page_styles() -> None:
    """Render (invisibly) the styles above into the page's head; call once inside the Blocks."""
    gr.HTML("", head=f"<style>{PHONE_CSS}</style>", js_on_load=None, elem_id="page-styles", padding=False,
            container=False)
