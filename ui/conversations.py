"""Saved conversations: kept in the browser (gr.BrowserState), titled, renamed, deleted, exported and imported.

A record is {"id", "title", "messages" (the Chatbot's value), "feedback" {message index: "Like" | "Dislike"}}.
The store is a list of records, the most recently used first.
"""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path
from typing import Any

import gradio as gr

from core.errors import BadFileError
from core.paths import cache_root
from ui.controls import is_metrics, text_of
from ui.exports import export_folder
from ui.streaming import METRICS_BODY

Record = dict[str, Any]
STORAGE_KEY = "deepseek-playground-conversations"
MAX_IMPORT_BYTES = 5_000_000  # localStorage holds about 5 MB per site
TITLE_CHARS = 48


def browser_secret() -> str:
    """The key that encrypts saved conversations, kept in the cache root so a restart can still read them."""
    path = cache_root() / "browser-state-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def title_of(messages: list[dict[str, Any]]) -> str:
    """The first user message, cut to a title."""
    first = next((text_of(m["content"]) for m in messages if m["role"] == "user" and not is_metrics(m)), "").strip()
    line = " ".join(first.split()) or "Untitled"
    return line if len(line) <= TITLE_CHARS else line[:TITLE_CHARS - 1] + "…"


def find(store: list[Record], conv_id: str) -> Record | None:
    return next((r for r in store if r["id"] == conv_id), None)


def save(store: list[Record], conv_id: str, messages: list[dict[str, Any]]) -> tuple[list[Record], str]:
    """Store messages under conv_id (a new record when it is empty or gone), moved to the front; (store, id)."""
    if not messages:
        return store, conv_id
    record = find(store, conv_id) or {"id": uuid.uuid4().hex[:12], "title": title_of(messages), "feedback": {}}
    record = {**record, "messages": messages}
    return [record, *(r for r in store if r["id"] != record["id"])], record["id"]


def rate(store: list[Record], conv_id: str, index: int, liked: bool | str) -> list[Record]:
    """Record a like (True / "Like") or dislike for message `index`; the same click again clears it in Gradio."""
    verdict = liked if isinstance(liked, str) else ("Like" if liked else "Dislike")
    return [{**r, "feedback": {**r.get("feedback", {}), str(index): verdict}} if r["id"] == conv_id else r
            for r in store]


def rename(store: list[Record], conv_id: str, title: str) -> list[Record]:
    title = " ".join(title.split())[:TITLE_CHARS * 2]
    return [{**r, "title": title or r["title"]} if r["id"] == conv_id else r for r in store]


def delete(store: list[Record], conv_id: str) -> list[Record]:
    return [r for r in store if r["id"] != conv_id]


def choices(store: list[Record]) -> list[tuple[str, str]]:
    """(title, id) pairs for the conversation picker."""
    return [(r["title"], r["id"]) for r in store]


def to_markdown(record: Record) -> str:
    """One conversation as Markdown: speakers in bold, metrics and reasoning as quotes, feedback marked."""
    lines, feedback = [f"# {record['title']}", ""], record.get("feedback", {})
    for index, message in enumerate(record["messages"]):
        text = text_of(message["content"]).strip("\u200b").strip()
        title = (message.get("metadata") or {}).get("title")
        if title:
            lines += [f"> *{title}*" + (f"\n> {text}" if text else ""), ""]
            continue
        mark = {"Like": " 👍", "Dislike": " 👎"}.get(feedback.get(str(index), ""), "")
        speaker = "You" if message["role"] == "user" else "DeepSeek"
        lines += [f"**{speaker}:**{mark}", "", text, ""]
    return "\n".join(lines)


def export_files(store: list[Record], conv_id: str) -> tuple[str | None, str | None]:
    """(all conversations as JSON, the shown one as Markdown) written to a temp folder; None where empty."""
    if not store:
        return None, None
    folder = export_folder("playground-export-")
    json_path = folder / "deepseek-playground-conversations.json"
    json_path.write_text(json.dumps({"app": "DeepSeek Playground", "version": 1, "conversations": store},
                                    ensure_ascii=False, indent=1))
    record = find(store, conv_id)
    if record is None:
        return str(json_path), None
    md_path = folder / f"{''.join(c if c.isalnum() else '-' for c in record['title'])[:40] or 'conversation'}.md"
    md_path.write_text(to_markdown(record))
    return str(json_path), str(md_path)


def parse_import(path: str) -> list[Record]:
    """Records from an exported JSON file (new ids, so nothing is overwritten); BadFileError when it is not one."""
    file = Path(path)
    if file.stat().st_size > MAX_IMPORT_BYTES:
        raise BadFileError(f"That file is over {MAX_IMPORT_BYTES // 1_000_000} MB; the browser cannot keep it.")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        records = data["conversations"] if isinstance(data, dict) else data
        return [{"id": uuid.uuid4().hex[:12], "title": str(r.get("title") or title_of(r["messages"])),
                 "messages": [clean_message(m) for m in r["messages"]], "feedback": dict(r.get("feedback", {}))}
                for r in records]
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise BadFileError("That is not a conversations file exported from this app (JSON with "
                           "'conversations', each with 'messages').") from None


def clean_message(message: dict[str, Any]) -> dict[str, Any]:
    """Only role, text content and a metrics title survive an import (no file paths from elsewhere)."""
    role = message["role"]
    if role not in ("user", "assistant"):
        raise ValueError(role)
    cleaned: dict[str, Any] = {"role": role, "content": text_of(message["content"])}
    if is_metrics(message):
        cleaned["metadata"] = {"title": str(message["metadata"]["title"]), "status": "done"}
        cleaned["content"] = cleaned["content"] or METRICS_BODY
    return cleaned


class Panel:
    """The conversations widgets of the chat tab and their wiring to its chatbot."""

    def __init__(self, chatbot: gr.Chatbot, meter: gr.Markdown, empty_meter: str) -> None:
        self.chatbot, self.meter, self.empty_meter = chatbot, meter, empty_meter
        self.store = gr.BrowserState([], storage_key=STORAGE_KEY, secret=browser_secret())
        self.current = gr.State("")
        with gr.Accordion("Conversations (kept in this browser)", open=True, elem_id="chat-conversations"):
            with gr.Row(equal_height=True):
                self.picker = gr.Dropdown([], value=None, label="Conversation", scale=3, elem_id="chat-conversation")
                self.new = gr.Button("New chat", size="sm", scale=1, elem_id="chat-new")
            with gr.Row(equal_height=True):
                self.title = gr.Textbox(placeholder="New title", show_label=False, scale=3, elem_id="chat-title")
                self.rename = gr.Button("Rename", size="sm", scale=1, elem_id="chat-rename")
                self.delete = gr.Button("Delete", size="sm", variant="stop", scale=1, elem_id="chat-delete")
            with gr.Row():
                self.json = gr.DownloadButton("Export all (JSON)", size="sm", elem_id="chat-export-json")
                self.markdown = gr.DownloadButton("Export this (Markdown)", size="sm", elem_id="chat-export-md")
                self.upload = gr.UploadButton("Import JSON", file_types=[".json"], size="sm", elem_id="chat-import")

    @property
    def shown(self) -> list[Any]:
        """What a change of store or current conversation updates."""
        return [self.store, self.current, self.picker, self.json, self.markdown]

    def wire(self) -> None:
        private = {"api_visibility": "private", "queue": False}
        self.chatbot.like(self.on_like, [self.store, self.current], self.store, **private)
        self.picker.input(self.on_pick, [self.store, self.picker], [self.chatbot, self.meter, *self.shown], **private)
        for trigger in (self.new.click, self.chatbot.clear):  # the chatbot's bin starts a new chat, keeps the old
            trigger(self.on_new, self.store, [self.chatbot, self.meter, *self.shown], **private)
        self.rename.click(lambda s, c, t: self.view(rename(s, c, t), c), [self.store, self.current, self.title],
                          self.shown, **private)
        self.delete.click(self.on_delete, [self.store, self.current], [self.chatbot, self.meter, *self.shown],
                          **private)
        self.upload.upload(self.on_import, [self.store, self.upload], [self.chatbot, self.meter, *self.shown],
                           **private)
        root = gr.context.Context.root_block
        if root is not None:  # a reload shows the most recent conversation again
            root.load(self.on_new_page, self.store, [self.chatbot, *self.shown], show_progress="hidden", **private)

    def after(self, event: Any) -> Any:
        """Save the chatbot once `event` is done (an answer, an undo)."""
        return event.then(self.on_saved, [self.chatbot, self.store, self.current], self.shown,
                          api_visibility="private", queue=False)

    def view(self, store: list[Record], conv_id: str) -> tuple[Any, ...]:
        json_file, md_file = export_files(store, conv_id)
        return (store, conv_id, gr.Dropdown(choices=choices(store), value=conv_id or None),
                gr.DownloadButton(value=json_file, interactive=json_file is not None),
                gr.DownloadButton(value=md_file, interactive=md_file is not None))

    def on_saved(self, messages: list[dict[str, Any]], store: list[Record], conv_id: str) -> tuple[Any, ...]:
        return self.view(*save(store, conv_id, messages))

    def on_like(self, store: list[Record], conv_id: str, data: gr.LikeData) -> list[Record]:
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        return rate(store, conv_id, index, data.liked)

    def on_pick(self, store: list[Record], conv_id: str) -> tuple[Any, ...]:
        record = find(store, conv_id)
        return (record["messages"] if record else [], self.empty_meter, *self.view(store, conv_id if record else ""))

    def on_new(self, store: list[Record]) -> tuple[Any, ...]:
        return ([], self.empty_meter, *self.view(store, ""))

    def on_new_page(self, store: list[Record]) -> tuple[Any, ...]:
        store = store or []
        return (store[0]["messages"] if store else [], *self.view(store, store[0]["id"] if store else ""))

    def on_delete(self, store: list[Record], conv_id: str) -> tuple[Any, ...]:
        return ([], self.empty_meter, *self.view(delete(store, conv_id), ""))

    def on_import(self, store: list[Record], path: str) -> tuple[Any, ...]:
        try:
            records = parse_import(path)
        except BadFileError as exc:
            gr.Warning(str(exc), title="Not imported")
            return (gr.skip(),) * 7
        gr.Info(f"Imported {len(records)} conversation(s).")
        store = [*records, *(store or [])]
        return self.on_pick(store, store[0]["id"] if store else "")
