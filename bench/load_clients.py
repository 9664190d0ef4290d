"""Client processes for bench/load.py: one simulated user each, over /chat (gradio_client) or /v1 (openai).

Kept free of torch and the app's code, so spawning a client process costs only its HTTP client. Each process makes
its client once, then answers ("go", prompt, tokens, start_at) commands: it waits until the wall-clock start_at
(so N processes start together), streams one greedy answer and sends back (ttft_s, total_s, text).
"""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from typing import Any


def chat_user(url: str, model: str) -> Any:
    from gradio_client import Client

    client = Client(url, verbose=False)

    def ask(prompt: str, tokens: int) -> Any:
        job = client.submit(prompt, "", "", model, "fp32", tokens, 0.0, 0.95, 50, 1.0, 0, api_name="/chat")
        return iter(job)  # the whole answer so far at each step

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
