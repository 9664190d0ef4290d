"""Offline text corpus for the tiny text checkpoints, built from Python's bundled pydoc topics."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from pydoc_data.topics import topics

DESCRIPTION = (
    "Python's pydoc_data.topics (79 language-reference topics bundled with CPython), split into "
    "sections, duplicate paragraphs removed; whole sections held out by seed for evaluation; plus "
    "chat samples built from the training sections (explain / what is / summarise questions "
    "answered with the section's own paragraphs)."
)
UNDERLINE = re.compile(r"^([*=\-^~\"])\1{2,}$")
LIST_OR_CODE = re.compile(r"^(\s|\* |- |\+[-=]|\||=+ |\d+\. )")
HEADING_LEVEL = {"*": "#", "=": "##", "-": "###"}
SYSTEM_PROMPTS = (
    "You are a helpful assistant.",
    "You are a concise Python tutor.",
    "Answer questions about the Python language.",
)
QUESTIONS = (
    "Explain {s}.",
    "What is {s}?",
    "Tell me about {s}.",
    "Describe {s} in Python.",
    "Can you explain {s}?",
)
STATEMENT = re.compile(r'^The "(\w+)" statement$')


@dataclass(frozen=True)
class Section:
    """One headed section of a topic: its heading and its cleaned paragraphs."""

    topic: str
    heading: str
    paragraphs: tuple[str, ...]

    def text(self) -> str:
        """Heading and paragraphs as plain text, blank-line separated."""
        return "\n\n".join((self.heading, *self.paragraphs))


@dataclass(frozen=True)
class Split:
    """Training sections and held-out sections (disjoint, seeded)."""

    train: list[Section]
    heldout: list[Section]


def _is_code(paragraph: str) -> bool:
    """True for indented blocks, lists and tables whose line breaks carry meaning."""
    return any(LIST_OR_CODE.match(line) for line in paragraph.split("\n"))


def _clean(paragraph: str) -> str:
    """Unwrap hard-wrapped prose into one line; keep code and lists verbatim."""
    paragraph = paragraph.strip("\n").rstrip()
    if _is_code(paragraph):
        return paragraph
    return " ".join(line.strip() for line in paragraph.split("\n"))


def _heading(block: str) -> str | None:
    """The heading text if this block is a title line over an underline."""
    lines = block.strip("\n").split("\n")
    if len(lines) == 2 and UNDERLINE.match(lines[1]) and lines[0].strip():
        return lines[0].strip()
    return None


def load_sections() -> list[Section]:
    """Every topic split at its headings; paragraphs seen in an earlier topic are dropped."""
    seen: set[str] = set()
    sections: list[Section] = []
    for key, raw in topics.items():
        heading, paragraphs = "", []
        for block in re.split(r"\n[ \t]*\n", raw):
            title = _heading(block)
            if title is not None:
                if paragraphs:
                    sections.append(Section(key, heading, tuple(paragraphs)))
                heading, paragraphs = title, []
                continue
            text = _clean(block)
            if text and text not in seen:
                seen.add(text)
                paragraphs.append(text)
        if paragraphs:
            sections.append(Section(key, heading, tuple(paragraphs)))
    return sections


def split_sections(sections: list[Section], seed: int, fraction: float) -> Split:
    """Hold out whole sections (seeded) until they make up `fraction` of the characters."""
    total = sum(len(s.text()) for s in sections)
    order = list(range(len(sections)))
    random.Random(seed).shuffle(order)
    held: set[int] = set()
    chars = 0
    for i in order:
        if chars >= fraction * total:
            break
        if len(sections[i].paragraphs) >= 2 and len(sections[i].text()) < 0.02 * total:
            held.add(i)
            chars += len(sections[i].text())
    train = [s for i, s in enumerate(sections) if i not in held]
    heldout = [s for i, s in enumerate(sections) if i in held]
    return Split(train=train, heldout=heldout)


def documents(sections: list[Section]) -> list[str]:
    """One plain-text document per topic, its sections in order."""
    by_topic: dict[str, list[str]] = {}
    for section in sections:
        by_topic.setdefault(section.topic, []).append(section.text())
    return ["\n\n".join(parts) for parts in by_topic.values()]


def _subject(heading: str) -> str:
    """Heading turned into a noun phrase for a question ('The "for" statement' -> 'the ...')."""
    words = heading.split(" ")
    return " ".join(w.lower() if re.fullmatch(r"[A-Z][a-z]+", w) and w != "Python" else w
                    for w in words)


def _shorten(paragraph: str, max_words: int) -> str:
    """Cut a long prose paragraph after the sentence that crosses `max_words` words."""
    if _is_code(paragraph) or len(paragraph.split()) <= max_words:
        return paragraph
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z\"])", paragraph)
    kept: list[str] = []
    for sentence in sentences:
        kept.append(sentence)
        if len(" ".join(kept).split()) >= max_words // 2:
            break
    return " ".join(kept)


def _answer(paragraphs: tuple[str, ...], max_words: int = 120) -> str:
    """The section's opening paragraphs, at most two and about `max_words` words."""
    chosen: list[str] = []
    for paragraph in (_shorten(p, max_words) for p in paragraphs[:2]):
        if chosen and len(" ".join(chosen + [paragraph]).split()) > max_words:
            break
        chosen.append(paragraph)
    return "\n\n".join(chosen)


def _first_sentence(paragraph: str) -> str | None:
    """The paragraph's first sentence when the paragraph has more than one."""
    match = re.match(r"(.{20,}?[.!?])\s+[A-Z\"]", paragraph)
    return match.group(1) if match else None


def _conversation(user: str, answer: str, rng: random.Random) -> list[dict[str, str]]:
    """A one-turn chat, with a system prompt about a third of the time."""
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    if rng.random() < 0.3:
        messages.insert(0, {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    return messages


def chat_samples(sections: list[Section], seed: int) -> list[list[dict[str, str]]]:
    """Question/answer and summarise chats from training sections, a few multi-turn."""
    rng = random.Random(seed)
    chats: list[list[dict[str, str]]] = []
    for section in sections:
        if section.heading:
            answer = _answer(section.paragraphs)
            for template in rng.sample(QUESTIONS, 3):
                chats.append(_conversation(template.format(s=_subject(section.heading)), answer, rng))
            keyword = STATEMENT.match(section.heading)
            if keyword:
                question = f"What does the '{keyword.group(1)}' statement do?"
                chats.append(_conversation(question, answer, rng))
        for paragraph in section.paragraphs:
            summary = None if _is_code(paragraph) else _first_sentence(paragraph)
            if summary and rng.random() < 0.5:
                chats.append(_conversation(f"Summarise: {paragraph}", summary, rng))
    rng.shuffle(chats)
    for i in range(0, len(chats) - 1, 10):
        chats[i] = chats[i] + [m for m in chats[i + 1] if m["role"] != "system"]
    return chats


def calibration_passages(sections: list[Section], seed: int, count: int = 100) -> list[str]:
    """`count` short prose paragraphs (20-120 words) from the training sections."""
    prose = [p for s in sections for p in s.paragraphs
             if not _is_code(p) and 20 <= len(p.split()) <= 120]
    return random.Random(seed).sample(prose, min(count, len(prose)))


def _markdown(raw: str) -> str:
    """pydoc topic text as Markdown: underlined titles become headings, code gets fences."""
    out: list[str] = []
    for block in re.split(r"\n[ \t]*\n", raw.strip()):
        block = block.strip("\n")
        if not block.strip():
            continue
        lines = block.split("\n")
        if _heading(block) is not None:
            out.append(f"{HEADING_LEVEL.get(lines[1][0], '####')} {lines[0].strip()}")
        elif all(line.startswith("   ") for line in lines):
            out.append("```\n" + "\n".join(line[3:] for line in lines) + "\n```")
        else:
            out.append(block)
    return "\n\n".join(out) + "\n"


def write_long_documents(docs_dir: Path) -> dict[str, int]:
    """Write the two example long documents; return their word counts by file name."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "python_data_model.md": _markdown("\n\n".join(topics[k] for k in ("objects", "types"))),
        "python_exceptions.txt": "\n\n".join(
            topics[k].strip() for k in ("exceptions", "try", "raise", "assert", "with",
                                        "context-managers")) + "\n",
    }
    for name, text in files.items():
        (docs_dir / name).write_text(text, encoding="utf-8")
    return {name: len(text.split()) for name, text in files.items()}
