"""Fixtures the /v1 tests share: a real openai client on the test app, and the Service that answers in-process."""

import openai
import pytest

from core.serving.service import Service
from tests.conftest import UI_CONFIG


@pytest.fixture(scope="module")
def oai(app_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=app_url + "v1", api_key="not-needed", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def service(registry) -> Service:
    return Service(registry, UI_CONFIG.limits)
