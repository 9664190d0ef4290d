"""Long-text mode: reading an uploaded document safely."""

from __future__ import annotations

from pathlib import Path

from core.errors import BadFileError

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".csv", ".json", ".py", ".log")


def read_document(path: str | Path, max_bytes: int) -> str:
    """The UTF-8 text of an uploaded file, or BadFileError saying why it cannot be used."""
    file = Path(path)
    size = file.stat().st_size
    if size > max_bytes:
        raise BadFileError(
            f"{file.name} is {size / 1e6:.1f} MB; documents up to {max_bytes / 1e6:.1f} MB are accepted."
        )
    if file.suffix.lower() not in TEXT_SUFFIXES:
        raise BadFileError(f"{file.name} is not a text document. Attach a .txt or .md file.")
    data = file.read_bytes()
    if b"\x00" in data[:8192]:
        raise BadFileError(f"{file.name} looks binary, not text. Attach a .txt or .md file.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadFileError(f"{file.name} is not UTF-8 text (byte {exc.start} is invalid). Save it as UTF-8.") from exc
    if not text.strip():
        raise BadFileError(f"{file.name} is empty.")
    return text
