"""One running app for the UI tests, on a free loopback port, with the session's shared registry."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from app import build_app
from core.config import AppConfig, LimitsConfig
from ui.server import launch_options

# A 4K window keeps "document longer than the window" tests to seconds on 2 CPU cores.
# A 4 MB upload limit keeps the oversized-upload test to a few MB.
UI_CONFIG = AppConfig(limits=LimitsConfig(max_context_tokens=4096, max_upload_bytes=4_000_000))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def app_url(registry) -> Iterator[str]:
    demo = build_app(registry, UI_CONFIG)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_options(UI_CONFIG))
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)
