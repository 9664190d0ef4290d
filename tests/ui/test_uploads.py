"""Uploads to the running app on loopback: oversized ones are refused, and a refused or broken one leaves no file."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

from tests.conftest import UI_CONFIG

UPLOAD = "gradio_api/upload"
LIMIT = UI_CONFIG.limits.max_upload_bytes
BOUNDARY = "playgroundboundary"
HEAD = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.bin\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n").encode()
TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()
MB = b"x" * 1_000_000


def temp_files() -> set[Path]:
    root = Path(os.environ["GRADIO_TEMP_DIR"])
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def wait_until_gone(before: set[Path], seconds: float = 10.0) -> set[Path]:
    deadline = time.monotonic() + seconds
    while (left := temp_files() - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_a_streamed_upload_over_the_limit_is_refused_and_leaves_nothing(app_url):
    before = temp_files()

    def body():  # chunked: no Content-Length, so only the streaming check can stop it
        yield HEAD
        for _ in range(LIMIT // len(MB) + 3):
            yield MB
        yield TAIL

    response = httpx.post(app_url + UPLOAD, content=body(), timeout=60,
                          headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert response.status_code == 413
    assert wait_until_gone(before) == set()


def test_a_declared_oversized_upload_is_refused_before_its_body_is_read(app_url):
    before = temp_files()
    with raw_upload(app_url, declared=LIMIT * 10) as sock:
        reply = b""  # answered at once, no body sent at all; the status line and the message may arrive apart
        while b" MB" not in reply and (chunk := sock.recv(4096)):
            reply += chunk
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413") and f"{LIMIT / 1e6:.0f} MB" in reply
    assert temp_files() - before == set()


def test_an_upload_cut_off_part_way_leaves_no_partial_file(app_url):
    before = temp_files()
    with raw_upload(app_url, declared=len(HEAD) + 3 * len(MB) + len(TAIL)) as sock:
        sock.sendall(HEAD + MB)
        deadline = time.monotonic() + 10
        while not temp_files() - before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert temp_files() - before, "the partial upload never reached the disk: the test would prove nothing"
    assert wait_until_gone(before) == set()


def test_an_upload_under_the_limit_is_kept(app_url):
    response = httpx.post(app_url + UPLOAD, files={"files": ("ok.txt", b"hello")}, timeout=30)
    assert response.status_code == 200
    assert Path(response.json()[0]).read_bytes() == b"hello"


class raw_upload:
    """A socket that has sent an upload's headers (declaring `declared` body bytes) and nothing more."""

    def __init__(self, url: str, declared: int) -> None:
        parts = urlparse(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        self.sock.sendall((f"POST {parts.path}{UPLOAD} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                           f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                           f"Content-Length: {declared}\r\n\r\n").encode())

    def __enter__(self) -> socket.socket:
        return self.sock

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
