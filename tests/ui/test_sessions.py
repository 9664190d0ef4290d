"""Gradio keeps one state copy per session: the app bounds how many, so session-less callers cannot fill RAM."""
import httpx

from app import build_app
from core.config import AppConfig, ServerConfig
from tests.conftest import free_port
from ui.server import launch_options


def test_sessions_beyond_server_max_sessions_are_dropped_least_recently_used_first(registry):
    cfg = AppConfig(server=ServerConfig(max_sessions=3))
    demo = build_app(registry, cfg)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_options(cfg))
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/config").status_code == 200
        holder = demo.state_holder
        for n in range(10):  # what ten callers without a session hash each create
            holder[f"visitor-{n}"]
        holder["visitor-8"]  # used again: kept ahead of visitor-9
        holder["visitor-10"]
        assert list(holder.session_data) == ["visitor-9", "visitor-8", "visitor-10"]
    finally:
        demo.close()


def test_the_default_keeps_a_thousand_sessions_not_gradios_ten_thousand():
    assert launch_options(AppConfig())["state_session_capacity"] == 1000
