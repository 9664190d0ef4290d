"""Training files (CSV / JSONL): read as a stream, checked, and refused with a message a person understands."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import BadFileError

SUFFIXES = (".csv", ".tsv", ".jsonl")
ROLES = ("system", "user", "assistant")


class DataError(BadFileError):
    """A training file that cannot be used as it is."""


@dataclass(frozen=True)
class DataLimits:
    max_bytes: int = 50_000_000  # bigger files are refused before anything is read
    max_rows: int = 200_000
    max_classes: int = 100  # more distinct labels almost always means the wrong column
    max_text_chars: int = 20_000  # one cell


@dataclass(frozen=True)
class LabeledTexts:
    texts: tuple[str, ...]
    labels: tuple[int, ...]  # index into label_names
    label_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def majority_accuracy(self) -> float:
        """Accuracy of always answering the most frequent label."""
        return Counter(self.labels).most_common(1)[0][1] / len(self.labels) if self.labels else 0.0

    def subset(self, indices: list[int]) -> LabeledTexts:
        return LabeledTexts(tuple(self.texts[i] for i in indices), tuple(self.labels[i] for i in indices),
                            self.label_names)

    def split(self, eval_fraction: float, seed: int) -> tuple[LabeledTexts, LabeledTexts]:
        """(train, held-out), stratified by label and seeded; each label with 2+ rows appears in both."""
        rng = random.Random(seed)
        train, held = [], []
        for label in range(len(self.label_names)):
            rows = [i for i, y in enumerate(self.labels) if y == label]
            rng.shuffle(rows)
            n_held = round(len(rows) * eval_fraction) if len(rows) > 1 else 0
            n_held = min(max(n_held, 1 if len(rows) > 1 else 0), len(rows) - 1) if rows else 0
            held += rows[:n_held]
            train += rows[n_held:]
        return self.subset(sorted(train)), self.subset(sorted(held))


Chat = tuple[dict[str, str], ...]  # {"role", "content"} messages, ending with the assistant's answer


def file_columns(path: str | Path, limits: DataLimits = DataLimits()) -> list[str]:
    """Column names: the CSV header, or the keys of the first JSONL record."""
    for record in read_records(path, limits):
        return list(record)
    raise DataError(f"{Path(path).name} has no rows.")


def read_records(path: str | Path, limits: DataLimits = DataLimits()) -> Iterator[dict[str, Any]]:
    """Stream the rows of a CSV/TSV/JSONL file as dicts; refuse files over the limits."""
    path = Path(path)
    _check_file(path, limits)
    reader = _read_jsonl if path.suffix.lower() == ".jsonl" else _read_csv
    for count, record in enumerate(reader(path), start=1):
        if count > limits.max_rows:
            raise DataError(f"{path.name} has more than {limits.max_rows:,} rows; take a sample of it "
                            "(e.g. `head -n 100000`) or raise the limit.")
        yield record


def _check_file(path: Path, limits: DataLimits) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"{path.name}: expected a {', '.join(SUFFIXES)} file.")
    if not path.is_file():
        raise DataError(f"{path} does not exist.")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise DataError(f"{path.name} is {size / 1e6:,.0f} MB; the limit is {limits.max_bytes / 1e6:,.0f} MB. "
                        "Fine-tune on a sample of it (e.g. `head -n 100000`).")
    if size == 0:
        raise DataError(f"{path.name} is empty.")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open("rb") as handle:  # decoded line by line, so an error names its line
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path.name} is not UTF-8 text (undecodable bytes on line {line_no}). "
                                "Save it as UTF-8 (e.g. 'CSV UTF-8' in a spreadsheet) and upload it again.") from None
            yield line_no, line.removeprefix("\ufeff") if line_no == 1 else line


def _read_csv(path: Path) -> Iterator[dict[str, Any]]:
    numbered = _lines(path)
    position = [0]

    def lines() -> Iterator[str]:
        for line_no, line in numbered:
            position[0] = line_no
            yield line

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        reader = csv.DictReader(lines(), delimiter=delimiter)
        for row in reader:
            if None in row:
                raise DataError(f"{path.name} line {position[0]} has more fields than the header.")
            yield row
    except csv.Error as exc:
        raise DataError(f"{path.name} is not a valid CSV near line {position[0]}: {exc}.") from None


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    for line_no, line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path.name} line {line_no} is not valid JSON ({exc.msg}).") from None
        if not isinstance(record, dict):
            raise DataError(f"{path.name} line {line_no} must be a JSON object, got {type(record).__name__}.")
        yield record


def load_labeled(path: str | Path, text_col: str, label_col: str, limits: DataLimits = DataLimits()) -> LabeledTexts:
    """Texts and labels from two columns; rows missing either are skipped; 2 to max_classes labels."""
    name = Path(path).name
    texts: list[str] = []
    raw_labels: list[str] = []
    for record in read_records(path, limits):
        for column in (text_col, label_col):
            if column not in record:
                known = ", ".join(str(k) for k in record) or "none"
                raise DataError(f"{name} has no column '{column}'. Its columns: {known}.")
        text, label = _cell(record[text_col]), _cell(record[label_col])
        if text and label:
            texts.append(text[: limits.max_text_chars])
            raw_labels.append(label)
    return _labeled(name, label_col, texts, raw_labels, limits)


def _cell(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _labeled(name: str, label_col: str, texts: list[str], raw: list[str], limits: DataLimits) -> LabeledTexts:
    counts = Counter(raw)
    if not counts:
        raise DataError(f"{name} has no row with both a text and a label.")
    if len(counts) < 2:
        raise DataError(f"Column '{label_col}' of {name} has a single label ('{raw[0]}'): a classifier needs "
                        "at least two different labels.")
    if len(counts) > limits.max_classes:
        raise DataError(f"Column '{label_col}' of {name} has {len(counts):,} different labels; the limit is "
                        f"{limits.max_classes}. Is it the label column (not an id or free text)?")
    names = tuple(sorted(counts))
    index = {label: i for i, label in enumerate(names)}
    return LabeledTexts(tuple(texts), tuple(index[label] for label in raw), names)


def load_chats(path: str | Path, limits: DataLimits = DataLimits(), key: str = "messages") -> list[Chat]:
    """Chats from a JSONL file of {"messages": [{"role", "content"}, ...]} ending with an assistant turn."""
    path = Path(path)
    if path.suffix.lower() != ".jsonl":
        raise DataError(f"{path.name}: instruction data must be a .jsonl file of {{\"{key}\": [...]}} records.")
    chats = [_chat(path.name, n, record, key) for n, record in enumerate(read_records(path, limits), start=1)]
    if not chats:
        raise DataError(f"{path.name} has no records.")
    return chats


def _chat(name: str, number: int, record: dict[str, Any], key: str) -> Chat:
    messages = record.get(key)
    where = f"{name} record {number}"
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where} needs a non-empty '{key}' list (its keys: {', '.join(record) or 'none'}).")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise DataError(f"{where}: each message needs a role among {', '.join(ROLES)}.")
        if not isinstance(message.get("content"), str):
            raise DataError(f"{where}: each message needs a text 'content'.")
    if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
        raise DataError(f"{where} must end with a non-empty assistant message (the answer to learn).")
    return tuple({"role": m["role"], "content": m["content"]} for m in messages)
