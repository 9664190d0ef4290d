"""What the chat tab sends back as context, and which seed an answer uses (no browser)."""

from __future__ import annotations

import gradio as gr

from ui.chat import THINK_TAGS
from ui.chat_turns import Turn, document_chip, last_turn, to_turns, turn_at
from ui.controls import draw_seed


def shown_in_browser(history: list[dict]) -> list[dict]:
    """The history as the chat tab's Chatbot hands it back after showing it."""
    chatbot = gr.Chatbot(reasoning_tags=[THINK_TAGS])
    return chatbot.preprocess(chatbot.postprocess(history))


def test_r1_thinking_is_shown_apart_and_left_out_of_the_next_turn():
    history = shown_in_browser([
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "<think>Two and two make four.</think>It is 4."},
        {"role": "assistant", "content": "\u200b", "metadata": {"title": "3 tokens · seed 5", "status": "done"}},
    ])
    assert [m["metadata"] and m["metadata"]["title"] for m in history] == [None, "Reasoning", None, "3 tokens · seed 5"]
    turns = to_turns(history)
    assert [(t.role, t.content) for t in turns] == [("user", "What is 2+2?"), ("assistant", "It is 4.")]


def test_the_last_turn_brings_back_its_message_document_and_answer():
    chip = document_chip("The report text.", tokens=5)
    history = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, chip,
               {"role": "user", "content": [{"type": "text", "text": "c"}]}, {"role": "assistant", "content": "d"},
               {"role": "assistant", "content": "\u200b", "metadata": {"title": "1 tokens", "status": "done"}}]
    assert chip["metadata"]["title"] == "📄 Document · 5 tokens"
    assert last_turn(history) == Turn(history[:2], "c", "The report text.", "d")
    assert turn_at(history, 0, "edited") == Turn([], "edited", "", "b")
    assert last_turn([]) is None
    assert [t.content for t in to_turns(history)] == ["a", "b", "c", "d"]  # the document went with "c" only


def test_a_fixed_seed_is_kept_and_an_unset_one_is_drawn_anew():
    assert draw_seed(7) == 7 and draw_seed(0) == 0
    drawn = {draw_seed(-1) for _ in range(5)} | {draw_seed(None)}
    assert len(drawn) > 1 and all(0 <= s < 2**31 for s in drawn)
