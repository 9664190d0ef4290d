"""Remote models in the app: pickers marked remote with the host (and unavailable when down), the Resources table,
/chat through a real engine (`transformers serve`) and a fault server, and remote rows in /compare."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from gradio_client.exceptions import AppError

from app import build_app
from core.config import AppConfig, LimitsConfig, RemoteModelConfig
from core.models.catalog import default_catalog
from core.paths import ASSETS, ROOT
from core.serving.registry import ModelRegistry
from core.serving.remotes import RemoteHub, build_hub
from tests.conftest import DENSE_MODEL
from tests.conftest import free_port as free_app_port
from tests.remote_servers import fault_server, free_port, wait_ready
from ui.controls import model_choices, precision_choices
from ui.resources import remote_table

CONFIG = AppConfig(limits=LimitsConfig(max_context_tokens=4096))


@pytest.fixture(scope="module")
def faults():
    with fault_server() as server:
        yield server


@pytest.fixture(scope="module")
def hub(engine, faults) -> Iterator[RemoteHub]:
    down = f"http://127.0.0.1:{free_port()}/v1"
    configs = [RemoteModelConfig("remote/qwen2-tiny", engine, str(ASSETS / "models" / "qwen2-tiny")),
               RemoteModelConfig("remote/down", down, "x")]
    hub = build_hub(configs, [faults.url])  # --remote URL: every model the fault server lists
    yield hub
    hub.close()


@pytest.fixture(scope="module")
def remote_client(hardware, hub):
    from gradio_client import Client

    registry = ModelRegistry(default_catalog(), hardware)
    demo = build_app(registry, CONFIG, remotes=hub)
    port = free_app_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False), registry
    demo.close()


def test_pickers_mark_remote_models_with_their_host_and_the_unreachable(remote_client, hub, engine):
    _, registry = remote_client
    labels = dict((v, k) for k, v in model_choices(registry, "text", hub))
    host = engine.split("//")[1].removesuffix("/v1")
    assert labels["remote/qwen2-tiny"] == f"remote/qwen2-tiny (remote · {host})"
    assert labels["remote/down"].endswith("unavailable)") and "remote/ok" in labels
    assert DENSE_MODEL in labels and "remote/ok" not in dict(model_choices(registry, "vision", hub)).values()
    assert precision_choices(registry, "remote/ok") == [("set by the remote server", "remote")]
    assert "remote/ok" not in [e.model_id for e in registry.catalog.of_kind("text")]  # Quantize/Fine-tune lists


def test_resources_show_reachability_latency_and_requests_in_flight(remote_client, hub):
    client, _ = remote_client
    client.predict("hello", model="remote/ok", api_name="/chat")
    rows = {r[0]: r for r in remote_table(hub)}
    assert rows["remote/ok"][3] == "yes" and rows["remote/ok"][4] > 0 and rows["remote/ok"][5] == 0
    assert rows["remote/down"][3] == "no" and "Cannot reach" in rows["remote/down"][7]


def test_chat_endpoint_streams_from_a_remote_and_keeps_a_cut_answer(remote_client):
    client, _ = remote_client
    assert client.predict("hello", model="remote/ok", api_name="/chat") == "one two three four five"
    assert client.predict("hello", model="remote/drop", api_name="/chat") == "one two"  # partial kept
    with pytest.raises(AppError, match="is busy \\(503\\)"):
        client.predict("hello", model="remote/busy503", api_name="/chat")
    with pytest.raises(AppError, match="Cannot reach the remote"):
        client.predict("hello", model="remote/down", api_name="/chat")


def test_chat_endpoint_through_transformers_serve(remote_client):
    client, _ = remote_client
    text = client.predict("What is a tuple?", model="remote/qwen2-tiny", max_new_tokens=6, api_name="/chat")
    assert text.strip()


def test_compare_adds_remote_rows_that_say_what_they_could_not_measure(remote_client):
    client, _ = remote_client
    run = client.predict(DENSE_MODEL, ["fp32"], "What is a tuple?", 8, 0, ["remote/qwen2-tiny", "remote/busy429"],
                         api_name="/compare")
    rows = {r["precision"]: r for r in run["results"]}
    engine_row = rows["remote/qwen2-tiny"]
    assert engine_row["error"] is None and engine_row["new_tokens"] == 8 and engine_row["ttft_s"] > 0
    assert "perplexity not measured" in engine_row["note"] and "KL and top-1" in engine_row["note"]
    table = {row[0]: row for row in run["table"]}
    columns = run["columns"]
    cells = dict(zip(columns, table[engine_row["label"]], strict=True))
    assert cells["memory MB"] is None and cells["mean KL"] is None and cells["TTFT s"] > 0
    # transformers serve streams the rendered prompt first, so its answer agrees with fp32's only after that echo
    assert 0 <= engine_row["greedy_agreement"] <= 1
    assert "busy (429)" in rows["remote/busy429"]["error"]


def test_the_app_starts_with_every_remote_down_and_says_so(tmp_path):
    """`python app.py --remote URL` and a configured remote, both unreachable: the app serves anyway."""
    down = f"http://127.0.0.1:{free_port()}/v1"
    config = tmp_path / "remote.yaml"
    config.write_text(f"models:\n  remote:\n    - id: remote/gone\n      base_url: {down}\n      model: x\n")
    port, log = free_app_port(), tmp_path / "app.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--remote", down, "--port", str(port)], cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PLAYGROUND_CONFIG": str(config)})
    try:
        wait_ready(f"http://127.0.0.1:{port}/config", proc, 240)
    finally:
        proc.terminate()
        proc.wait(30)
    assert f"Remote {down} is not available: Cannot reach the remote" in log.read_text()
