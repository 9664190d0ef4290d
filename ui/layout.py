"""Page-wide styles: on a phone (390 px wide) tabs are compact and Chat's input shows without scrolling; table
headers wrap between words only."""

from __future__ import annotations

import gradio as gr

PHONE_CSS = """
#quant-quality th, #quant-speed th, #quant-memory th { word-break: normal !important; overflow-wrap: normal !important;
  hyphens: none !important; }
#quant-legend { font-size: 13px; }
#chat-attach { flex: 0 0 44px !important; min-width: 44px !important; max-width: 44px !important; }
#chat-attached:empty { display: none; }
@media (max-width: 640px) {
  [role=tablist] button { padding: 4px 7px !important; font-size: 13px !important; min-width: 0 !important; }
  #caption-history { height: 34vh !important; max-height: 34vh !important; }
  #chat-history { height: 30vh !important; max-height: 30vh !important; }  /* room for the paperclip's row */
  /* Caption: model and precision first, side by side; the model card and sampling last; a shorter image and
     no examples: the picker, the Caption button and the start of the answer share the first screen */
  .row > .column:has(> .form > #caption-model) { display: contents !important; }
  .form:has(> #caption-model) { order: -1; flex: 1 1 100% !important; flex-direction: row !important;
    flex-wrap: nowrap !important; }
  .form:has(> #caption-model) > .block { min-width: 0 !important; flex: 1 1 50% !important; }
  .row > .column:has(> .form > #caption-model) > :not(.form) { order: 9; flex: 1 1 100% !important; }
  #caption-image { height: 150px !important; }
  #caption-image + .block { display: none !important; }
}
"""


def page_styles() -> None:
    """Render (invisibly) the styles above into the page's head; call once inside the Blocks."""
    gr.HTML("", head=f"<style>{PHONE_CSS}</style>", js_on_load=None, elem_id="page-styles", padding=False,
            container=False)
