"""Remote models against a real fault server on loopback: streaming, every fault readable with the partial answer
kept, Stop and disconnect hanging up, bounded concurrency, discovery, and no local memory used."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest

from core.config import AppConfig, ConfigError, LimitsConfig, RemoteModelConfig, load_config
from core.errors import BadSettingError, BusyError, GenerationError, ModelUnavailableError
from core.generation.prompting import ChatRequest
from core.generation.sampling import SamplingParams
from core.models.catalog import default_catalog
from core.serving.registry import ModelRegistry
from core.serving.remotes import RemoteHub, build_hub
from core.serving.service import Finished, Notice, Service, TextDelta
from tests.conftest import DENSE_MODEL
from tests.remote_servers import API_KEY, fault_server, free_port

GREEDY = SamplingParams(max_new_tokens=16, temperature=0.0)


@pytest.fixture(scope="module")
def faults():
    with fault_server() as server:
        yield server


def remote(server_url: str, model: str, **kw) -> RemoteModelConfig:
    return RemoteModelConfig(id=f"remote/{model}", base_url=server_url, model=model, **kw)


def service_for(hardware, *configs: RemoteModelConfig) -> Service:
    hub = build_hub(configs)
    registry = ModelRegistry(default_catalog(), hardware)
    return Service(registry, LimitsConfig(), remotes=hub)


def answer(service: Service, model_id: str, stop: threading.Event | None = None) -> tuple[str, list, Finished]:
    events = list(service.stream(ChatRequest("hello"), model_id, "", GREEDY, stop=stop))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert isinstance(events[-1], Finished)
    return text, [e.text for e in events if isinstance(e, Notice)], events[-1]


def test_streams_an_answer_with_usage_and_sends_openai_fields(faults, hardware):
    service = service_for(hardware, remote(faults.url, "ok"))
    text, notices, done = answer(service, "remote/ok")
    assert text == "one two three four five" and notices == []
    assert (done.stats.new_tokens, done.stats.prompt_tokens, done.stats.precision) == (5, 7, "remote")
    assert done.backend == "remote: ok" and not done.stats.stopped
    body = faults.bodies[-1]
    assert body["stream"] is True and body["max_tokens"] == 16 and body["temperature"] == 0.0
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert service.registry.resident() == []  # nothing loaded here


@pytest.mark.parametrize(("model", "said"), [
    ("drop", "ended the stream before the answer was finished"),
    ("garbage", "malformed stream line"),
    ("badjson", "malformed stream event"),
    ("error-event", "CUDA out of memory"),
])
def test_a_fault_mid_stream_keeps_the_partial_answer_and_says_why(faults, hardware, model, said):
    service = service_for(hardware, remote(faults.url, model))
    text, notices, done = answer(service, f"remote/{model}")
    assert text == "one two"
    assert len(notices) >= 1 and said in notices[0] and "answer so far is kept" in notices[0]
    assert done.stats.stopped and done.stats.new_tokens == 2


def test_read_timeout_before_and_after_the_first_token(faults, hardware):
    service = service_for(hardware, remote(faults.url, "slow", read_timeout_s=1.0),
                          remote(faults.url + "/", "stall", read_timeout_s=1.0))
    with pytest.raises(GenerationError, match="sent nothing for 1 s"):
        answer(service, "remote/slow")
    text, notices, _ = answer(service, "remote/stall")
    assert text == "one two" and "read timeout" in notices[0]


def test_down_at_start_is_marked_unavailable_and_refused_readably(hardware):
    down = f"http://127.0.0.1:{free_port()}/v1"
    hub = build_hub([remote(down, "x")], [down])  # neither the config nor --remote stops the start
    assert hub.label("remote/x").endswith("unavailable") and down in hub.down
    assert hub.report()[0].reachable == "no"
    service = service_for(hardware, remote(down, "x"))
    with pytest.raises(ModelUnavailableError, match="Cannot reach the remote at 127.0.0.1:.*connection refused"):
        answer(service, "remote/x")


@pytest.mark.parametrize(("model", "error", "said"), [
    ("busy429", BusyError, "is busy \\(429\\).*over capacity"),
    ("busy503", BusyError, "is busy \\(503\\)"),
    ("keyed", ModelUnavailableError, "refused no API key \\(401\\).*invalid api key"),
    ("nope", ModelUnavailableError, "does not serve the model 'nope' \\(404\\).*does not exist"),
])
def test_refusals_before_any_token_are_readable_errors(faults, hardware, model, error, said):
    service = service_for(hardware, remote(faults.url, model))
    with pytest.raises(error, match=said):
        answer(service, f"remote/{model}")


def test_the_api_key_comes_from_the_named_environment_variable(faults, hardware, monkeypatch):
    monkeypatch.setenv("FAULT_KEY", API_KEY)
    service = service_for(hardware, remote(faults.url, "keyed", api_key_env="FAULT_KEY"))
    assert answer(service, "remote/keyed")[0] == "one two three four five"
    monkeypatch.setenv("FAULT_KEY", "wrong")
    with pytest.raises(ModelUnavailableError, match="refused the key in \\$FAULT_KEY"):
        answer(service, "remote/keyed")


def _hangups_after(faults, action) -> tuple[float, int]:
    """(seconds the action took, hang-ups of "trickle" requests the server saw after it)."""
    before = faults.hangups["trickle"]
    start = time.perf_counter()
    action()
    elapsed = time.perf_counter() - start
    deadline = time.monotonic() + 5
    while faults.hangups["trickle"] == before and time.monotonic() < deadline:
        time.sleep(0.05)
    return elapsed, faults.hangups["trickle"] - before


def test_stop_hangs_up_on_the_server(faults, hardware):
    service = service_for(hardware, remote(faults.url, "trickle"))
    stop = threading.Event()

    def run() -> None:
        seen = []
        for event in service.stream(ChatRequest("hi"), "remote/trickle", "", GREEDY, stop=stop):
            seen.append(event)
            if len(seen) == 3:
                stop.set()
        assert isinstance(seen[-1], Finished) and seen[-1].stats.stopped

    elapsed, hangups = _hangups_after(faults, run)
    assert elapsed < 3 and hangups == 1  # the server saw the disconnect (400 words would take 20 s)


def test_closing_the_stream_disconnect_hangs_up_too(faults, hardware):
    service = service_for(hardware, remote(faults.url, "trickle"))

    def run() -> None:
        events = service.stream(ChatRequest("hi"), "remote/trickle", "", GREEDY)
        next(events), next(events)
        events.close()

    assert _hangups_after(faults, run)[1] == 1
    assert service.remotes.report()[0].in_flight == 0


def test_requests_in_flight_are_bounded_per_server(faults, hardware):
    service = service_for(hardware, remote(faults.url, "hold", max_concurrency=2))
    faults.max_in_flight = 0
    texts: list[str] = []
    threads = [threading.Thread(target=lambda: texts.append(answer(service, "remote/hold")[0])) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert texts == ["one two three four five"] * 5
    assert faults.max_in_flight == 2


def test_discovery_adds_every_listed_model(faults):
    hub = RemoteHub()
    added = hub.discover(faults.url)
    assert "remote/ok" in added and len(added) == len(set(added)) >= 10
    assert hub.report()[0].host == faults.url.split("//")[1].removesuffix("/v1")
    assert hub.discover("gpu-box:8000") == [] and "must start with http" in hub.down["gpu-box:8000"]


def test_remote_models_never_load_here_nor_count_against_the_budget(faults, hardware):
    budget = 50_000_000
    registry = ModelRegistry(default_catalog(), hardware, memory_budget_bytes=budget)
    service = Service(registry, LimitsConfig(), remotes=build_hub([remote(faults.url, "ok")]))
    with pytest.raises(BadSettingError, match="never loaded in this process"):
        service.registry.get("remote/ok", "fp32")
    answer(service, "remote/ok")
    assert service.registry.resident() == [] and service.registry.free_bytes() == budget
    assert [e.model_id for e in service.registry.catalog.of_kind("text")].count("remote/ok") == 0  # local lists
    assert "remote/ok" in [e.model_id for e in service.registry.catalog.of_kind("text", remote=True)]


def test_config_reads_remote_models_and_names_a_missing_key(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  remote:\n    - id: remote/v3\n      base_url: http://gpu:8000/v1\n"
                    "      model: deepseek-ai/DeepSeek-V3\n      api_key_env: VLLM_API_KEY\n      max_concurrency: 4\n")
    cfg = load_config(path)
    assert cfg.models.remote == (RemoteModelConfig("remote/v3", "http://gpu:8000/v1", "deepseek-ai/DeepSeek-V3",
                                                   "VLLM_API_KEY", max_concurrency=4),)
    path.write_text("models:\n  remote:\n    - id: remote/v3\n      base_url: http://gpu:8000/v1\n")
    with pytest.raises(ConfigError, match="models.remote\\[0\\]' needs the key 'model'"):
        load_config(path)
    path.write_text("models:\n  remote:\n    - id: r\n      base_url: gpu:8000\n      model: m\n")
    with pytest.raises(BadSettingError, match="must start with http"):
        build_hub(load_config(path).models.remote)
    assert AppConfig().models.remote == ()


def test_a_comparison_row_for_a_remote_with_prompt_logprobs_has_its_perplexity(faults, hardware):
    from core.quant.comparison import compare_precisions
    from core.serving.remote_compare import add_remote_rows

    service = service_for(hardware, remote(faults.url, "ok"))
    run = compare_precisions(service.registry, DENSE_MODEL, ["fp32"], "hello", GREEDY)
    run = add_remote_rows(run, service.registry, service.remotes, ["remote/ok"])
    local, row = run.results
    assert faults.bodies[-1]["echo"] is True and faults.bodies[-1]["logprobs"] == 0
    assert row.perplexity == pytest.approx(math.exp(2.0))
    assert row.perplexity_change == pytest.approx(math.exp(2.0) / local.perplexity - 1)
    assert row.output == "one two three four five" and row.new_tokens == 5 and "perplexity" not in row.unmeasured
    assert "memory MB" in row.unmeasured and "KL and top-1" in row.note


def test_an_image_goes_to_a_vision_remote_as_a_data_url_and_a_text_remote_refuses_it(faults, hardware):
    from PIL import Image

    from core.generation.vision import VisionRequest

    service = service_for(hardware, RemoteModelConfig("remote/eyes", faults.url, "ok", vision=True),
                          remote(faults.url, "ok"))
    request = VisionRequest(Image.new("RGB", (8, 8), "red"), question="What colour?")
    events = list(service.stream(request, "remote/eyes", "", GREEDY))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "one two three four five"
    content = faults.bodies[-1]["messages"][0]["content"]
    assert content[0]["image_url"]["url"].startswith("data:image/png;base64,") and content[1]["text"] == "What colour?"
    assert "remote/eyes" in [e.model_id for e in service.registry.catalog.of_kind("vision", remote=True)]
    with pytest.raises(BadSettingError, match="cannot see images"):
        service.stream(request, "remote/ok", "", GREEDY)
