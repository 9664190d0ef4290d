"""DeepSeek Playground: parse args, load config, build the ModelRegistry, the Service and the UI, launch."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio builds anything: no outbound calls

from core.serving.zerogpu import gpu_decorator, import_spaces_first, zero_gpu_enabled  # noqa: E402  (no torch, no gradio)

import_spaces_first()  # on ZeroGPU `spaces` must patch torch before anything imports it; elsewhere a no-op

import gradio as gr  # noqa: E402

from core.config import AppConfig, load_config  # noqa: E402
from core.models.catalog import default_catalog  # noqa: E402
from core.models.hardware import detect_hardware  # noqa: E402
from core.serving.registry import ModelRegistry  # noqa: E402
from core.serving.service import Service  # noqa: E402
from core.space.config import load_space_config  # noqa: E402
from core.space.runtime import preload_defaults, with_space_defaults  # noqa: E402
from ui import caption, chat, finetune, layout, resources  # noqa: E402
from ui import quantize as quantize_tab  # noqa: E402

TITLE = "DeepSeek Playground"


def build_service(registry: ModelRegistry, cfg: AppConfig) -> Service:
    """The Service every front end calls; on ZeroGPU its generation runs under @spaces.GPU, sized per request."""
    if not zero_gpu_enabled():
        return Service(registry, cfg.limits)
    zero = load_space_config().zero_gpu  # spaces_config.yaml's slot sizing, read once at start-up
    return Service(registry, cfg.limits, zero, gpu_decorator(zero.size))


def build_app(registry: ModelRegistry, cfg: AppConfig) -> gr.Blocks:
    """All tabs around one shared registry and one Service."""
    service = build_service(registry, cfg)
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\nRunning on **{registry.hardware.describe()}**, "
                    f"full precision here is **{registry.hardware.full_precision.value}**.", elem_id="header")
        layout.page_styles()
        with gr.Tabs(overflow_behavior="wrap"):  # on a phone every tab stays reachable, none behind "..."
            with gr.Tab("Chat", elem_id="tab-chat"):
                chat.build(service, cfg)
            with gr.Tab("Caption", elem_id="tab-caption"):
                caption.build(service, cfg)
            with gr.Tab("Quantization", elem_id="tab-quant"):
                quantize_tab.build(service, cfg)
            with gr.Tab("Fine-tune", elem_id="tab-finetune"):
                finetune.build(service, cfg)
            with gr.Tab("Resources", elem_id="tab-resources"):
                resources.build(service, cfg)
    demo.queue(default_concurrency_limit=cfg.server.concurrency, max_size=cfg.server.max_queue)
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=TITLE)
    parser.add_argument("--config", type=Path, help="YAML config (see core/config.py for keys)")
    parser.add_argument("--host", help="override server.host")
    parser.add_argument("--port", type=int, help="override server.port")
    args = parser.parse_args(argv)
    hardware = detect_hardware()
    cfg = with_space_defaults(load_config(args.config), hardware)  # on a Space: real DeepSeek models by default
    registry = ModelRegistry(default_catalog(cfg.models.local_paths), hardware,
                             memory_budget_bytes=cfg.models.memory_budget_bytes, max_waiting=cfg.server.max_queue)
    preload_defaults(registry, cfg)  # ZeroGPU: models go to CUDA at start-up, before launch
    demo = build_app(registry, cfg)
    demo.launch(server_name=args.host or cfg.server.host, server_port=args.port or cfg.server.port,
                theme=gr.themes.Soft())


if __name__ == "__main__":
    main()
