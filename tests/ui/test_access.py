"""Login, the admin token for operator actions, and messages without server paths."""

from __future__ import annotations

import httpx
import pytest

from app import build_app
from core.config import AppConfig, ConfigError, ServerConfig
from tests.conftest import free_port
from ui.access import NotAllowedError, OperatorGate, login_pairs
from ui.errors import public_text
from ui.server import launch_options


@pytest.mark.parametrize(("message", "shown"), [
    ("Could not save the model to /home/ann/.cache/deepseek-playground/finetuned/run-1 (disk full).",
     "Could not save the model to run-1 (disk full)."),
    ("/srv/app/assets/models/x does not exist.", "x does not exist."),
    ("Cannot read config /etc/playground/my.yaml: bad", "Cannot read config my.yaml: bad"),
    ("See https://huggingface.co/spaces/a/b and 3/4 of the layers.", "See https://huggingface.co/spaces/a/b and "
                                                                     "3/4 of the layers."),
])
def test_messages_never_show_server_paths(message, shown):
    assert public_text(message) == shown


def test_login_comes_from_the_environment_or_the_config():
    cfg = AppConfig(server=ServerConfig(auth={"ann": "pw1"}))
    assert login_pairs(cfg, {}) == [("ann", "pw1")]
    assert login_pairs(cfg, {"PLAYGROUND_AUTH": "bob:x, cy:y:z"}) == [("bob", "x"), ("cy", "y:z")]
    assert login_pairs(AppConfig(), {}) is None
    with pytest.raises(ConfigError, match="PLAYGROUND_AUTH"):
        login_pairs(cfg, {"PLAYGROUND_AUTH": "nopassword"})


def test_operator_actions_need_the_admin_token_when_one_is_set():
    gate = OperatorGate(AppConfig(), {"PLAYGROUND_ADMIN_TOKEN": "s3cret"})
    gate.check("s3cret")
    for wrong in ("", None, "s3cre", "s3cret "):
        with pytest.raises(NotAllowedError, match="admin token"):
            gate.check(wrong)


def test_without_a_token_operator_actions_are_open_on_loopback_only():
    OperatorGate(AppConfig(), {}).check(None)  # local use stays as simple as before
    public = AppConfig(server=ServerConfig(host="0.0.0.0"))
    with pytest.raises(NotAllowedError, match="PLAYGROUND_ADMIN_TOKEN"):
        OperatorGate(public, {}).check("anything")


def test_with_a_login_the_app_and_its_api_refuse_strangers(registry):
    cfg = AppConfig(server=ServerConfig(auth={"ann": "pw1"}))
    demo = build_app(registry, cfg)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_options(cfg))
    try:
        url = f"http://127.0.0.1:{port}/"
        assert httpx.get(url + "config").status_code == 401
        assert httpx.post(url + "gradio_api/upload", files={"files": ("a.txt", b"x")}).status_code == 401
        with httpx.Client(base_url=url) as http:
            assert http.post("login", data={"username": "ann", "password": "bad"}).status_code == 400
            assert http.post("login", data={"username": "ann", "password": "pw1"}).status_code == 200
            assert http.get("config").status_code == 200
    finally:
        demo.close()
