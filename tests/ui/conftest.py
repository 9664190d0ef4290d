"""One running app (UI and /v1 API) for the UI and API tests, on a free loopback port, with the session's registry."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from app import build_app, build_service, server_kwargs
from core.config import AppConfig, LimitsConfig

# A 4K window keeps "document longer than the window" tests to seconds on 2 CPU cores.
UI_CONFIG = AppConfig(limits=LimitsConfig(max_context_tokens=4096))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def app_url(registry) -> Iterator[str]:
    service = build_service(registry, UI_CONFIG)
    demo = build_app(registry, UI_CONFIG, service)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                app_kwargs=server_kwargs(service, UI_CONFIG))
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)
