"""User text stays text: control tokens typed in a message, document or system prompt never become special ids.

The chat template is rendered with each special-token string in user content swapped for a marker that no
template changes; the rendered text is tokenized piece by piece: template text as usual (its own control
tokens are real), each marker as the literal characters the user typed (split_special_tokens=True).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

OPEN, CLOSE = "\ue000", "\ue001"  # private-use characters; with a random nonce a user cannot forge a marker
# One pattern for every request (a pattern per nonce would be compiled per request and churn re's cache);
# a match whose nonce is not this request's is text like any other.
MARKER = re.compile(f"{OPEN}([0-9a-f]+):(\\d+){CLOSE}")


def special_strings(tokenizer: Any) -> list[str]:
    """Every special-token string of this tokenizer (added tokens marked special, named ones, the image token)."""
    found = {t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values() if t.special}
    found |= set(getattr(tokenizer, "all_special_tokens", []))
    image_token = getattr(tokenizer, "image_token", None)
    if isinstance(image_token, str):
        found.add(image_token)
    return sorted((s for s in found if s), key=len, reverse=True)


@dataclass
class Escaper:
    """Swaps special-token strings in user text for markers, and tokenizes rendered text back."""

    tokenizer: Any
    specials: list[str] = field(default_factory=list)
    nonce: str = field(default_factory=lambda: secrets.token_hex(8))
    literals: list[str] = field(default_factory=list)  # marker i stands for literals[i]

    def __post_init__(self) -> None:
        self.specials = self.specials or special_strings(self.tokenizer)
        self._find = re.compile("|".join(map(re.escape, self.specials))) if self.specials else None

    def escape(self, text: str) -> str:
        """text with each special-token string replaced by a marker."""
        if self._find is None:
            return text
        return self._find.sub(self._mark, text)

    def _mark(self, match: re.Match[str]) -> str:
        self.literals.append(match.group(0))
        return f"{OPEN}{self.nonce}:{len(self.literals) - 1}{CLOSE}"

    def encode(self, rendered: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of rendered text: template control tokens real, escaped user strings as plain text."""
        ids: list[int] = []
        start = 0
        for match in MARKER.finditer(rendered):
            if match.group(1) != self.nonce:  # a forged marker: stays text
                continue
            ids += self._ids(rendered[start:match.start()], split=False)
            ids += self._ids(self.literals[int(match.group(2))], split=True)
            start = match.end()
        ids += self._ids(rendered[start:], split=False)
        if not add_special_tokens:
            return ids
        prefix, suffix = wrapping_ids(self.tokenizer)
        return prefix + ids + suffix

    def _ids(self, text: str, split: bool) -> list[int]:
        if not text:
            return []
        return list(self.tokenizer(text, add_special_tokens=False, split_special_tokens=split)["input_ids"])


def wrapping_ids(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a text when asked for special tokens (BOS, sometimes EOS)."""
    plain = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    wrapped = list(tokenizer("a", add_special_tokens=True)["input_ids"])
    for start in range(len(wrapped) - len(plain) + 1):
        if wrapped[start:start + len(plain)] == plain:
            return wrapped[:start], wrapped[start + len(plain):]
    return [], []
