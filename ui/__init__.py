"""Gradio tabs: one module per tab, each build(registry, cfg). Never imports torch."""
