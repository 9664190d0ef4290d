"""DeepSeek Playground: parse args, load config, build the ModelRegistry, the Service, the UI and the API, launch."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio builds anything: no outbound calls

from core.models.native_memory import release_native_memory, use_one_allocator  # noqa: E402  (no torch, no gradio)

use_one_allocator()  # before pandas or datasets import pyarrow: its allocator would keep its own freed pages

from core.serving.zerogpu import gpu_decorator, import_spaces_first, zero_gpu_enabled  # noqa: E402  (no torch, no gradio)

import_spaces_first()  # on ZeroGPU `spaces` must patch torch before anything imports it; elsewhere a no-op

import gradio as gr  # noqa: E402

from api import api_enabled, build_router  # noqa: E402
from core.config import AppConfig, ConfigError, load_config  # noqa: E402
from core.finetune.jobs import JobBook, output_root  # noqa: E402
from core.models.catalog import default_catalog  # noqa: E402
from core.models.hardware import detect_hardware  # noqa: E402
from core.serving.registry import ModelRegistry  # noqa: E402
from core.serving.remotes import RemoteHub, build_hub  # noqa: E402
from core.serving.request_log import configure_logging  # noqa: E402
from core.serving.service import Service  # noqa: E402
from core.space.config import load_space_config  # noqa: E402
from core.space.runtime import on_space, preload_defaults, with_space_defaults  # noqa: E402
from ui import caption, chat, finetune, layout, resources  # noqa: E402
from ui import quantize as quantize_tab  # noqa: E402
from ui.server import launch_options  # noqa: E402

TITLE = "DeepSeek Playground"


def build_service(registry: ModelRegistry, cfg: AppConfig, remotes: RemoteHub | None = None) -> Service:
    """The Service every front end calls; on ZeroGPU its local generation runs under @spaces.GPU, sized per request.
    Remote models join the registry's catalog (so every picker lists them) but are served by their own servers."""
    calibrate = cfg.models.allow_calibration
    policy = {"server": cfg.server, "allow_calibration": not on_space() if calibrate is None else calibrate,
              "remotes": remotes}
    if not zero_gpu_enabled():
        return Service(registry, cfg.limits, **policy)
    zero = load_space_config().zero_gpu  # spaces_config.yaml's slot sizing, read once at start-up
    return Service(registry, cfg.limits, zero, gpu_decorator(zero.size), **policy)


def build_app(registry: ModelRegistry, cfg: AppConfig, service: Service | None = None,
              remotes: RemoteHub | None = None) -> gr.Blocks:
    """All tabs around one shared registry, one Service and one book of fine-tune jobs."""
    service = service or build_service(registry, cfg, remotes)
    jobs = JobBook(root=output_root(), keep_runs=cfg.finetune.keep_runs, max_total_bytes=cfg.finetune.max_total_bytes)
    with gr.Blocks(title=TITLE, delete_cache=(cfg.server.cache_sweep_s, cfg.server.cache_max_age_s)) as demo:
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
                finetune.build(service, cfg, jobs)
            with gr.Tab("Resources", elem_id="tab-resources"):
                resources.build(service, cfg, jobs)
    demo.queue(default_concurrency_limit=cfg.server.concurrency, max_size=cfg.server.max_queue)
    return demo


def server_kwargs(service: Service, cfg: AppConfig) -> dict[str, Any]:
    """launch()'s app_kwargs: the OpenAI-compatible /v1 routes on the same server and port, when enabled."""
    if not api_enabled(cfg.server.api, zero_gpu_enabled()):
        return {}
    return {"routes": list(build_router(service, cfg).routes)}  # first in the app: matched before Gradio's own


def launch_kwargs(service: Service, cfg: AppConfig, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """demo.launch's keyword arguments: bounded uploads and login (ui.server.launch_options) plus the /v1 routes."""
    options = dict(options or launch_options(cfg))
    options["app_kwargs"] = {**options.get("app_kwargs", {}), **server_kwargs(service, cfg)}
    return options


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=TITLE)
    parser.add_argument("--config", type=Path, default=os.environ.get("PLAYGROUND_CONFIG") or None,
                        help="YAML config (see core/config.py for keys); default: $PLAYGROUND_CONFIG")
    parser.add_argument("--host", help="override server.host")
    parser.add_argument("--port", type=int, help="override server.port")
    parser.add_argument("--remote", action="append", default=[], metavar="URL",
                        help="an OpenAI-compatible server (e.g. http://gpu-box:8000/v1): adds every model it lists")
    parser.add_argument("--remote-key-env", default="", metavar="NAME",
                        help="the environment variable holding the --remote servers' API key")
    args = parser.parse_args(argv)
    hardware = detect_hardware()
    try:
        cfg = with_space_defaults(load_config(args.config), hardware)  # on a Space: real DeepSeek models by default
        cfg = replace(cfg, server=replace(cfg.server, host=args.host or cfg.server.host,
                                          port=args.port or cfg.server.port))
        options = launch_options(cfg)
    except ConfigError as exc:  # one clear line, no traceback
        print(f"config error: {exc}", file=sys.stderr)
        sys.exit(2)
    configure_logging(cfg.server.log_level)
    # Before any worker thread allocates: RSS follows live memory under load (README "Benchmarks", the soak).
    release_native_memory(cfg.server.malloc_arena_max, cfg.server.malloc_trim_s)
    registry = ModelRegistry(default_catalog(cfg.models.local_paths), hardware,
                             memory_budget_bytes=cfg.models.memory_budget_bytes, max_waiting=cfg.server.max_queue)
    preload_defaults(registry, cfg)  # ZeroGPU: models go to CUDA at start-up, before launch
    remotes = build_hub(cfg.models.remote, args.remote, args.remote_key_env)  # a server that is down: marked
    for url, why in remotes.down.items():
        print(f"Remote {url} is not available: {why}")
    service = build_service(registry, cfg, remotes)
    demo = build_app(registry, cfg, service)
    demo.launch(server_name=cfg.server.host, server_port=cfg.server.port, theme=gr.themes.Soft(),
                **launch_kwargs(service, cfg, options))


if __name__ == "__main__":
    main()
