"""What demo.launch gets besides host and port: upload limits and their guard, the optional login."""

from __future__ import annotations

from typing import Any

from starlette.middleware import Middleware

from core.config import AppConfig
from ui.access import login_pairs
from ui.uploads import UploadGuard


def launch_options(cfg: AppConfig) -> dict[str, Any]:
    """Keyword arguments for demo.launch that bound uploads (used by app.py and by the tests' app alike)."""
    limit = cfg.limits.max_upload_bytes
    return {
        "auth": login_pairs(cfg),
        "max_file_size": limit,
        "max_threads": cfg.server.max_threads,
        # each session keeps a copy of every stateful block's value (~0.4 MB here); gradio's default keeps 10,000
        "state_session_capacity": cfg.server.max_sessions,
        "app_kwargs": {"middleware": [Middleware(UploadGuard, max_bytes=limit)]},
    }
