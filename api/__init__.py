"""The OpenAI-compatible API: /v1 routes on the app's own server, calling only the Service.

requests (JSON -> request + SamplingParams), responses (events -> chunks, completions, usage), answer (one answer
read from the Service), errors (OpenAI's error objects), models (/v1/models), routes (the FastAPI routes).
"""

from __future__ import annotations

from api.routes import build_router

__all__ = ["build_router", "api_enabled"]


def api_enabled(configured: bool | None, zero_gpu: bool) -> bool:
    """server.api when set; by default on, except on ZeroGPU (calls outside Gradio's queue carry no visitor quota)."""
    return configured if configured is not None else not zero_gpu
