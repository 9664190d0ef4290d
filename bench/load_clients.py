"""Client processes for bench/load.py: one simulated user each, over /chat (Gradio's queue) or /v1 (openai).

Kept free of torch and the app's code, so spawning a client process costs only its HTTP client. Each process makes
its client once, then answers ("go", prompt, tokens, start_at) commands: it waits until the wall-clock start_at
(so N processes start together), streams one greedy answer and sends back (ttft_s, total_s, text).

/chat goes through Gradio's documented REST form of its queue (POST /gradio_api/call/chat, then the event's SSE
stream: what curl users and gradio_client's own protocol use, same queue, same handler), read with httpx. Not
gradio_client: its Job iterator polls every 1 ms, so eight client processes took as much CPU as the server on a
2-core machine (0.45 s each per four 8-user runs, against 0.03 s for an openai client), and the bench measured
its own clients.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any


def chat_user(url: str, model: str) -> Any:
    import httpx

    client = httpx.Client(base_url=url + "gradio_api/call/chat", timeout=600)
    session = uuid.uuid4().hex  # one Gradio session per user, as gradio_client and a browser tab have: without
    # one, every call makes Gradio build a fresh session state (the config of every block of the app)

    def ask(prompt: str, tokens: int) -> Iterator[str]:
        data = [prompt, "", "", model, "fp32", tokens, 0.0, 0.95, 50, 1.0, 0]
        event_id = client.post("", json={"data": data, "session_hash": session}).raise_for_status().json()["event_id"]
        with client.stream("GET", f"/{event_id}") as events:
            kind = ""
            for line in events.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif kind == "error":
                    raise RuntimeError(f"/chat failed: {line}")
                elif line.startswith("data: ") and kind in ("generating", "complete"):
                    outputs = json.loads(line.removeprefix("data: "))
                    if outputs:
                        yield outputs[0]  # the whole answer so far

    return ask, True


def v1_user(url: str, model: str) -> Any:
    import openai

    client = openai.OpenAI(base_url=url + "v1", api_key="bench", max_retries=0, timeout=600)

    def ask(prompt: str, tokens: int) -> Any:
        stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                                max_tokens=tokens, temperature=0, stream=True)
        return (c.choices[0].delta.content or "" for c in stream if c.choices)  # deltas

    return ask, False


def serve(path: str, url: str, model: str, conn: Connection) -> None:
    """A client process: make the client, say "ready", then run one answer per command until None arrives."""
    ask, cumulative = (chat_user if path == "chat" else v1_user)(url, model)
    conn.send("ready")
    while (command := conn.recv()) is not None:
        prompt, tokens, start_at = command
        time.sleep(max(0.0, start_at - time.time()))
        start, first, text = time.time(), None, ""
        for piece in ask(prompt, tokens):
            if first is None and piece:
                first = time.time()
            text = piece if cumulative else text + piece
        end = time.time()
        conn.send(((first or end) - start, end - start, text))
