import pytest

from core.errors import EmptyInputError, InputTooLongError
from core.generation.prompting import ChatRequest, ChatTurn, plan_context


def test_chat_template_round_trip(deepseek):
    tok = deepseek.tokenizer
    history = (ChatTurn("user", "Hi"), ChatTurn("assistant", "Hello."))
    request = ChatRequest("What does assert do?", history, "Be brief.")
    plan = plan_context(tok, request, window=4096, max_new_tokens=64)
    text = tok.decode(plan.input_ids)
    order = [text.index(s) for s in ("Be brief.", "Hi", "Hello.", "What does assert do?")]
    assert order == sorted(order)
    assert text.endswith("<｜Assistant｜>")
    assert tok(text, add_special_tokens=False)["input_ids"] == plan.input_ids
    assert not plan.trimmed and "Trimmed" not in plan.summary()


def test_oldest_turns_are_dropped_first_and_reported(deepseek):
    history = tuple(ChatTurn(r, f"turn {i} " + "word " * 50) for i, r in enumerate(["user", "assistant"] * 6))
    plan = plan_context(deepseek.tokenizer, ChatRequest("last question", history), window=400, max_new_tokens=64)
    text = deepseek.tokenizer.decode(plan.input_ids)
    assert plan.prompt_tokens <= 400 - 64
    assert plan.dropped_turns >= 2 and "turn 0" not in text and "turn 11" in text
    assert "oldest message(s) left out" in plan.summary()


def test_long_document_is_cut_at_the_tail_with_a_notice(deepseek):
    document = " ".join(f"sentence {i}." for i in range(3000))
    plan = plan_context(deepseek.tokenizer, ChatRequest("Summarise.", document=document), window=1024,
                        max_new_tokens=128)
    text = deepseek.tokenizer.decode(plan.input_ids)
    assert plan.prompt_tokens <= 1024 - 128
    assert plan.document_tokens_dropped > 0 and "sentence 0." in text and "sentence 2999." not in text
    assert "document tokens cut" in plan.summary()


def test_message_longer_than_the_window_is_refused(deepseek):
    with pytest.raises(InputTooLongError, match="window"):
        plan_context(deepseek.tokenizer, ChatRequest("word " * 2000), window=512, max_new_tokens=64)


def test_empty_message_is_refused(deepseek):
    with pytest.raises(EmptyInputError):
        plan_context(deepseek.tokenizer, ChatRequest("   "), window=512, max_new_tokens=64)


def test_huge_input_is_refused_before_tokenizing():
    with pytest.raises(InputTooLongError, match="characters"):
        ChatRequest("x" * 1_000_001).check_size(400_000)
