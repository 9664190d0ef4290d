"""The gradio_client for the UI tests; the running app itself (UI and /v1 API) is tests/conftest.py's app_url."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)
