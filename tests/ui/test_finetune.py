import json
import time
import uuid

import httpx
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from core.finetune.jobs import output_root
from core.finetune.runs import INTERRUPTED
from core.paths import ASSETS
from tests.conftest import TEXT_MODEL

LORA_TASK = "LoRA chat adapter (JSONL messages)"
CLASSIFY_TASK = "Classifier (text -> label)"


def test_lora_trained_in_the_tab_becomes_a_chat_model(client):
    data = handle_file(str(ASSETS / "data" / "instructions.jsonl"))
    status, _plot, *_ = client.predict(data, LORA_TASK, "", "", TEXT_MODEL, 1, 5e-3, 40, 0.8, api_name="/finetune")
    assert status.startswith("**Done") and "perplexity" in status
    message = client.predict(TEXT_MODEL, api_name="/finetune_use_in_chat")
    model_id = message.split("**")[1]
    assert model_id.startswith("finetuned/run-")
    answer = client.predict("Sentiment of this headline: Acme shares surge", model=model_id, precision="fp32",
                            max_new_tokens=8, temperature=0, api_name="/chat")
    assert answer.strip()


def test_single_class_file_is_refused_with_a_readable_message(client, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("text,label\nup,pos\ndown,pos\n", encoding="utf-8")
    with pytest.raises(AppError, match="single label"):
        client.predict(handle_file(str(path)), CLASSIFY_TASK, "text", "label", TEXT_MODEL, 1, 1e-3, 0, 0.8,
                       api_name="/finetune")


def test_closing_the_page_stops_its_fine_tune_and_sets_the_result_aside(app_url):
    """A raw browser-like session: join /finetune, watch it start, drop the connection; the run must end."""
    interrupted = output_root() / INTERRUPTED
    before = set(interrupted.glob("run-*"))
    with httpx.Client(base_url=app_url, timeout=60) as http:
        fn = next(d["id"] for d in http.get("config").json()["dependencies"] if d.get("api_name") == "finetune")
        path = http.post("gradio_api/upload", files={"files": ("c.jsonl", (ASSETS / "data" / "instructions.jsonl")
                                                                .read_bytes())}).json()[0]
        data = [{"path": path, "meta": {"_type": "gradio.FileData"}}, LORA_TASK, "", "", TEXT_MODEL, 100, 5e-3,
                200, 0.8]
        session = uuid.uuid4().hex
        http.post("gradio_api/queue/join", json={"data": data, "fn_index": fn, "session_hash": session,
                                                 "event_data": None, "trigger_id": None}).raise_for_status()
        with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as events:
            for line in events.iter_lines():
                assert "process_completed" not in line, line  # 100 epochs cannot be done yet
                if "Training" in line and "step" in line:
                    break  # training has started: now the page goes away
    deadline = time.monotonic() + 120
    while not set(interrupted.glob("run-*")) - before and time.monotonic() < deadline:
        time.sleep(0.5)
    (folder,) = set(interrupted.glob("run-*")) - before
    assert "disconnected" in json.loads((folder / "finetune.json").read_text())["interrupted"]
