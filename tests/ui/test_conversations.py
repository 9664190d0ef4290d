"""Saved conversations: titles, saving, feedback, Markdown and JSON export/import (no browser)."""

from __future__ import annotations

import json

import pytest

from core.errors import BadFileError
from ui.conversations import delete, export_files, parse_import, rate, rename, save, title_of, to_markdown

CHAT = [{"role": "user", "content": [{"type": "text", "text": "  What does\nassert do? " + "x" * 80}]},
        {"role": "assistant", "content": [{"type": "text", "text": "It checks a condition."}]},
        {"role": "assistant", "content": "\u200b", "metadata": {"title": "5 tokens · seed 3", "status": "done"}}]


def test_a_conversation_is_titled_by_its_first_message_and_saved_once_under_its_id():
    store, first = save([], "", CHAT[:2])
    assert title_of(CHAT).startswith("What does assert do? xxx") and len(store[0]["title"]) <= 48
    store, again = save(store, first, CHAT)
    assert again == first and len(store) == 1 and store[0]["messages"] == CHAT
    store, other = save(store, "", CHAT[:1])
    assert [r["id"] for r in store] == [other, first]  # most recent first
    assert save(store, "", []) == (store, "")  # an empty chat is not saved
    store = rename(store, first, "  Asserts  ")
    assert store[1]["title"] == "Asserts"
    assert [r["id"] for r in delete(store, other)] == [first]


def test_feedback_and_metrics_are_in_the_markdown_export():
    store, conv = save([], "", CHAT)
    store = rate(store, conv, 1, False)
    text = to_markdown(store[0])
    assert "**You:**" in text and "**DeepSeek:** 👎" in text and "> *5 tokens · seed 3*" in text
    assert "\u200b" not in text


def test_json_export_imports_back_with_new_ids_and_feedback(tmp_path):
    store, conv = save([], "", CHAT)
    store = rate(store, conv, 1, True)
    json_path, md_path = export_files(store, conv)
    assert md_path and md_path.endswith(".md")
    imported = parse_import(json_path)
    assert len(imported) == 1 and imported[0]["id"] != conv and imported[0]["feedback"] == {"1": "Like"}
    assert [m["role"] for m in imported[0]["messages"]] == ["user", "assistant", "assistant"]
    assert imported[0]["messages"][2]["metadata"]["title"] == "5 tokens · seed 3"


@pytest.mark.parametrize("content", ["not json", json.dumps({"conversations": [{"title": "t"}]}),
                                     json.dumps([{"messages": [{"role": "system", "content": "x"}]}])])
def test_a_file_that_is_not_an_export_gets_a_clear_message(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(BadFileError, match="not a conversations file"):
        parse_import(str(path))
