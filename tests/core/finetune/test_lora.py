import threading
from pathlib import Path

import pytest

from core.errors import ModelUnavailableError
from core.finetune.adapters import adapter_entry
from core.generation.prompting import ChatRequest
from core.generation.sampling import SamplingParams
from core.generation.stream import stream_chat
from tests.conftest import TEXT_MODEL
from tests.core.finetune.conftest import files_in

PROMPT = "Sentiment of this headline: Hooli shares surge after annual profit beat forecasts"
GREEDY = SamplingParams(max_new_tokens=12, temperature=0)


def test_lora_saves_only_the_adapter_and_lowers_held_out_loss(adapter):
    folder = Path(adapter.out_dir)
    assert {"adapter_config.json", "adapter_model.safetensors", "finetune.json"} <= files_in(folder)
    assert "model.safetensors" not in files_in(folder)
    assert adapter.eval_loss < adapter.eval_loss_before / 2
    assert 0 < adapter.trainable_params < adapter.total_params / 5


def test_adapter_loads_through_the_registry_and_changes_the_chat_answer(adapter, registry, deepseek):
    entry = adapter_entry(registry.catalog.get(TEXT_MODEL), adapter.out_dir, "sentiment")
    registry.register(entry)
    tuned = registry.get("finetuned/sentiment", "fp32")
    assert registry.get("finetuned/sentiment", "fp32") is tuned and tuned.entry.adapter_path == adapter.out_dir
    base_answer = "".join(stream_chat(deepseek, ChatRequest(PROMPT), GREEDY, threading.Event()))
    tuned_answer = "".join(stream_chat(tuned, ChatRequest(PROMPT), GREEDY, threading.Event()))
    assert tuned_answer != base_answer
    assert "sentiment is" in tuned_answer and "sentiment is" not in base_answer


def test_a_folder_that_is_not_an_adapter_is_refused(registry, tmp_path):
    with pytest.raises(ModelUnavailableError, match="not a finished fine-tuned model"):
        adapter_entry(registry.catalog.get(TEXT_MODEL), tmp_path)
