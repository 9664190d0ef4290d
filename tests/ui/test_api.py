import pytest
import torch
from gradio_client.exceptions import AppError

from core.generation.prompting import ChatRequest, plan_context
from tests.conftest import TEXT_MODEL, UI_CONFIG


def test_chat_endpoint_streams_the_answer(client):
    job = client.submit("What does the for statement do?", "", "", TEXT_MODEL, "fp32", 24, 0.0,
                        api_name="/chat")
    partials = list(job)
    assert len(partials) >= 2, "the answer should arrive in several steps"
    assert all(partials[i + 1].startswith(partials[i]) for i in range(len(partials) - 1))
    assert partials[-1].strip() and job.outputs()[-1] == partials[-1]


@pytest.mark.parametrize("args,message", [
    (("   ", "", "", TEXT_MODEL), "Type a message"),
    (("hi", "", "", "nope/model"), "Unknown model"),
    (("hi", "", "", TEXT_MODEL, "int3"), "Unknown precision"),
    (("hi", "", "", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "fp32"), "not reachable"),
    (("hi", "", "", TEXT_MODEL, "fp32", 10**7), "Max new tokens"),
])
def test_bad_input_gets_a_clear_message_and_the_server_keeps_serving(client, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name="/chat")
    assert client.predict("Hello", "", "", TEXT_MODEL, "fp32", 4, 0.0, api_name="/chat").strip()


def greedy_text(loaded, ids: list[int], max_new_tokens: int) -> str:
    inputs = torch.tensor([ids])
    with torch.inference_mode():
        out = loaded.model.generate(inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=max_new_tokens,
                                    do_sample=False, pad_token_id=loaded.tokenizer.eos_token_id)
    return loaded.tokenizer.decode(out[0, len(ids):], skip_special_tokens=True)


def test_document_that_does_not_fit_is_trimmed_not_refused(client, deepseek):
    document = "The quick brown fox. " * 2000  # ~10K tokens: beyond the 4K window of the UI tests
    request = ChatRequest("Summarise.", document=document)
    plan = plan_context(deepseek.tokenizer, request, UI_CONFIG.limits.max_context_tokens, 8)
    assert plan.document_tokens_dropped > 0
    # Measured once: the whole document's prompt gives another answer ('Accessing "__class_getitem__* allow'), so
    # equality with the trimmed prompt's answer shows the model was given the trimmed prompt.
    trimmed = greedy_text(deepseek, plan.input_ids, 8)
    answer = client.predict("Summarise.", "", document, TEXT_MODEL, "fp32", 8, 0.0, api_name="/chat")
    assert answer == trimmed
