import copy

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


def test_continue_ends_the_prompt_with_the_answer_so_far(deepseek):
    tok = deepseek.tokenizer
    request = ChatRequest("What does assert do?", answer_start="It checks that")
    text = tok.decode(plan_context(tok, request, window=4096, max_new_tokens=64).input_ids)
    assert text.endswith("<｜Assistant｜>It checks that")


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
    assert 0 < plan.document_tokens < plan.prompt_tokens
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


WIDE = 100_000  # a window nothing is trimmed in: the plan's prompt is the full prompt


def full_length(tok, request: ChatRequest) -> int:
    return plan_context(tok, request, window=WIDE, max_new_tokens=64).prompt_tokens


def long_history(turns: int = 12) -> tuple[ChatTurn, ...]:
    return tuple(ChatTurn(r, f"turn {i} " + "word " * 20) for i, r in enumerate(["user", "assistant"] * (turns // 2)))


def test_the_meter_reads_exactly_and_names_both_cuts(deepseek):
    tok = deepseek.tokenizer
    plan = plan_context(tok, ChatRequest("Hi"), window=4096, max_new_tokens=64)
    assert plan.summary() == f"Context {plan.prompt_tokens:,} / 4,096 tokens (+64 for the answer)."
    request = ChatRequest("Summarise.", long_history(4), document=" ".join(f"sentence {i}." for i in range(400)))
    both = plan_context(tok, request, window=600, max_new_tokens=64)
    assert both.summary().endswith(f"Trimmed to fit: 4 oldest message(s) left out; last "
                                   f"{both.document_tokens_dropped:,} document tokens cut.")


@pytest.mark.parametrize("pairs", [1, 2])
def test_exactly_the_fewest_oldest_pairs_that_make_it_fit_are_dropped(deepseek, pairs):
    tok, history = deepseek.tokenizer, long_history()
    fits = full_length(tok, ChatRequest("last question", history[2 * pairs:]))  # exactly the budget
    plan = plan_context(tok, ChatRequest("last question", history), window=fits + 64, max_new_tokens=64)
    assert plan.dropped_turns == 2 * pairs and plan.prompt_tokens == fits


def test_a_prompt_exactly_the_size_of_the_budget_is_sent_whole(deepseek):
    tok = deepseek.tokenizer
    request = ChatRequest("last question", long_history(4), document="A short note about loops.")
    size = full_length(tok, request)
    plan = plan_context(tok, request, window=size + 64, max_new_tokens=64)
    assert plan.prompt_tokens == size and not plan.trimmed


def test_old_turns_go_before_any_of_the_document(deepseek):
    tok = deepseek.tokenizer
    document = "The loop counter starts at seven."
    request = ChatRequest("What does it say?", long_history(), document=document)
    fits = full_length(tok, ChatRequest(request.message, request.history[6:], document=document))
    plan = plan_context(tok, request, window=fits + 64, max_new_tokens=64)
    assert plan.dropped_turns == 6 and plan.document_tokens_dropped == 0
    assert document in tok.decode(plan.input_ids) and plan.prompt_tokens == fits


def test_a_cut_document_keeps_its_head_with_a_notice_and_the_counts_add_up(deepseek):
    tok = deepseek.tokenizer
    request = ChatRequest("Summarise.", document=" ".join(f"sentence {i}." for i in range(400)))
    whole = plan_context(tok, request, window=WIDE, max_new_tokens=64).document_tokens
    plan = plan_context(tok, request, window=600, max_new_tokens=64)
    text = tok.decode(plan.input_ids)
    assert "sentence 0." in text and "\n[... document truncated ...]\n\nSummarise." in text
    assert plan.document_tokens + plan.document_tokens_dropped == whole and plan.document_tokens_dropped > 0


def test_a_document_with_no_room_left_is_dropped_whole_without_a_notice(deepseek):
    tok = deepseek.tokenizer
    message = "word " * 300
    alone = plan_context(tok, ChatRequest(message), window=WIDE, max_new_tokens=64)
    request = ChatRequest(message, document="A note that cannot fit beside the message.")
    plan = plan_context(tok, request, window=alone.prompt_tokens + 64 + 2, max_new_tokens=64)
    assert plan.input_ids == alone.input_ids and plan.document_tokens == 0
    assert plan.document_tokens_dropped == plan_context(tok, request, window=WIDE, max_new_tokens=64).document_tokens
    assert "Document:" not in tok.decode(plan.input_ids) and "document tokens cut" in plan.summary()


def test_document_tokens_count_typed_control_tokens_as_the_text_they_are(deepseek):
    tok = deepseek.tokenizer
    document = "see <｜end▁of▁sentence｜> here"
    plan = plan_context(tok, ChatRequest("What is this?", document=document), window=WIDE, max_new_tokens=64)
    as_text = tok(document, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    assert plan.document_tokens == len(as_text) and tok.eos_token_id not in plan.input_ids


def test_no_document_and_a_blank_system_prompt_add_nothing_to_the_prompt(deepseek):
    tok = deepseek.tokenizer
    bare = plan_context(tok, ChatRequest("Hi"), window=4096, max_new_tokens=64)
    assert tok.decode(bare.input_ids) == "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>"
    blank_system = plan_context(tok, ChatRequest("Hi", system="   "), window=4096, max_new_tokens=64)
    assert blank_system.input_ids == bare.input_ids


def test_a_tokenizer_without_a_chat_template_gets_a_plain_role_prompt(deepseek):
    tok = copy.deepcopy(deepseek.tokenizer)  # the real tokenizer, as a base model without a template has it
    tok.chat_template = None
    request = ChatRequest("Q <｜end▁of▁sentence｜>", (ChatTurn("user", "Hi"), ChatTurn("assistant", "Hello.")),
                          "Be brief.", answer_start="It")
    plan = plan_context(tok, request, window=4096, max_new_tokens=64)
    assert plan.input_ids[0] == tok.bos_token_id and tok.eos_token_id not in plan.input_ids
    assert tok.decode(plan.input_ids) == ("<｜begin▁of▁sentence｜>system: Be brief.\nuser: Hi\nassistant: Hello.\n"
                                          "user: Q <｜end▁of▁sentence｜>\nassistant:It")


def test_empty_input_and_no_room_for_a_prompt_say_what_to_do(deepseek):
    tok = deepseek.tokenizer
    with pytest.raises(EmptyInputError, match=r"^Type a message \(or attach a document\) first\.$"):
        plan_context(tok, ChatRequest("  ", document=" "), window=512, max_new_tokens=64)
    assert plan_context(tok, ChatRequest(" ", document="Only a document."), window=512, max_new_tokens=64).prompt_tokens
    with pytest.raises(InputTooLongError, match=r"^Max new tokens \(512\) leaves no room for a prompt in the 512-"):
        plan_context(tok, ChatRequest("Hi"), window=512, max_new_tokens=512)
    with pytest.raises(InputTooLongError, match="The message alone is"):  # one token of room: a prompt, too long
        plan_context(tok, ChatRequest("Hi"), window=512, max_new_tokens=511)
