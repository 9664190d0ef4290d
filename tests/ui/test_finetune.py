import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

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
