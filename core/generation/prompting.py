"""Chat requests (and plain prompts) -> token ids that fit the model's window, with a record of what was trimmed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import BadSettingError, EmptyInputError, InputTooLongError
from core.generation.user_text import Escaper

Role = Literal["user", "assistant"]
DOCUMENT_TEMPLATE = "Document:\n{document}\n\n{message}"


@dataclass(frozen=True)
class ChatTurn:
    role: Role
    content: str


@dataclass(frozen=True)
class ChatRequest:
    message: str
    history: tuple[ChatTurn, ...] = ()
    system: str = ""
    document: str = ""  # long-text mode: goes into the last user turn
    answer_start: str = ""  # the start of the answer, already written: the model continues it (Continue)

    def text_chars(self) -> int:
        """Characters of text in the request: message, document, system prompt and history."""
        return (len(self.message) + len(self.document) + len(self.system) + len(self.answer_start)
                + sum(len(t.content) for t in self.history))

    def check_size(self, max_chars: int) -> None:
        """Refuse text that is not text (wrong type, not encodable) or so large that tokenizing it would stall."""
        check_texts({"message": self.message, "system prompt": self.system, "document": self.document,
                     "answer so far": self.answer_start})
        check_turns(self.history)
        check_chars(self.text_chars(), max_chars)


@dataclass(frozen=True)
class PromptRequest:
    """A plain prompt the model continues as written: no chat template, no trimming (the API's /v1/completions)."""

    prompt: str

    def text_chars(self) -> int:
        """Characters of the prompt."""
        return len(self.prompt)

    def check_size(self, max_chars: int) -> None:
        """Refuse a prompt that is not text or is over max_chars."""
        check_texts({"prompt": self.prompt})
        check_chars(len(self.prompt), max_chars)


def check_texts(fields: dict[str, object]) -> None:
    """BadSettingError naming the field when a value is not a str or cannot be encoded as UTF-8 (lone surrogates)."""
    for name, value in fields.items():
        if not isinstance(value, str):
            raise BadSettingError(f"The {name} must be text, got {type(value).__name__}.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadSettingError(f"The {name} has a character that is not valid Unicode (position {exc.start}); "
                                  "remove it and try again.") from None


def check_turns(history: tuple[ChatTurn, ...]) -> None:
    """Each earlier turn is a ChatTurn of a user or an assistant with text content."""
    for i, turn in enumerate(history):
        if not isinstance(turn, ChatTurn) or turn.role not in ("user", "assistant"):
            raise BadSettingError(f"History item {i + 1} must be a user or assistant message.")
        check_texts({f"history message {i + 1}": turn.content})


def check_chars(size: int, max_chars: int) -> None:
    """InputTooLongError when a request's text is over max_chars."""
    if size > max_chars:
        raise InputTooLongError(f"The input is {size:,} characters; at most {max_chars:,} are accepted.")


@dataclass(frozen=True)
class ContextPlan:
    input_ids: list[int] = field(repr=False)
    window: int
    reserved_tokens: int  # kept free for the answer (max new tokens)
    dropped_turns: int = 0
    document_tokens_dropped: int = 0
    document_tokens: int = 0  # of the attached document, as sent (after any cut)

    @property
    def prompt_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def trimmed(self) -> bool:
        return self.dropped_turns > 0 or self.document_tokens_dropped > 0

    def summary(self) -> str:
        """The context meter: 'Context 1,234 / 32,768 tokens (+256 for the answer) ...'."""
        text = f"Context {self.prompt_tokens:,} / {self.window:,} tokens (+{self.reserved_tokens:,} for the answer)"
        notes = []
        if self.dropped_turns:
            notes.append(f"{self.dropped_turns} oldest message(s) left out")
        if self.document_tokens_dropped:
            notes.append(f"last {self.document_tokens_dropped:,} document tokens cut")
        return text + (f". Trimmed to fit: {'; '.join(notes)}." if notes else ".")


def plan_context(tokenizer: Any, request: ChatRequest, window: int, max_new_tokens: int) -> ContextPlan:
    """Render request with the chat template; drop oldest turns, then document tail, to fit window."""
    if not request.message.strip() and not request.document.strip():
        raise EmptyInputError("Type a message (or attach a document) first.")
    budget = window - max_new_tokens
    if budget <= 0:
        raise InputTooLongError(
            f"Max new tokens ({max_new_tokens:,}) leaves no room for a prompt in the {window:,}-token window."
        )
    history, document = list(request.history), request.document
    doc_ids: list[int] = (tokenizer(document, add_special_tokens=False, split_special_tokens=True)["input_ids"]
                          if document else [])
    kept_doc = len(doc_ids)
    ids = render(tokenizer, request, history, document)
    if len(ids) > budget and history:
        history, ids = drop_oldest_turns(tokenizer, request, history, document, budget)
    while len(ids) > budget and kept_doc > 0:
        kept_doc = max(0, kept_doc - (len(ids) - budget) - 8)  # 8: slack for BPE merges at the cut
        document = tokenizer.decode(doc_ids[:kept_doc]) + ("\n[... document truncated ...]" if kept_doc else "")
        ids = render(tokenizer, request, history, document)
    if len(ids) > budget:
        raise InputTooLongError(
            f"The message alone is {len(ids):,} tokens; with {max_new_tokens:,} kept for the answer, "
            f"this model's window of {window:,} tokens cannot hold it. Shorten it or lower max new tokens."
        )
    dropped = len(request.history) - len(history)
    return ContextPlan(ids, window, max_new_tokens, dropped, len(doc_ids) - kept_doc, kept_doc)


def plan_prompt(tokenizer: Any, request: PromptRequest, window: int, max_new_tokens: int) -> ContextPlan:
    """Tokenize a plain prompt as the model's own tokenizer does (its control tokens are real); refuse it if it
    does not fit the window with max_new_tokens kept for the answer."""
    if not request.prompt.strip():
        raise EmptyInputError("The prompt is empty: send some text for the model to continue.")
    ids = tokenizer(request.prompt, add_special_tokens=True)["input_ids"]
    budget = window - max_new_tokens
    if len(ids) > budget:
        raise InputTooLongError(f"The prompt is {len(ids):,} tokens; with {max_new_tokens:,} kept for the answer, "
                                f"this model's window of {window:,} tokens holds at most {max(budget, 0):,}.")
    return ContextPlan(ids, window, max_new_tokens)


def drop_oldest_turns(tokenizer: Any, request: ChatRequest, history: list[ChatTurn], document: str,
                      budget: int) -> tuple[list[ChatTurn], list[int]]:
    """The history without its fewest oldest pairs of turns that lets the prompt fit (all of them if none does).

    A binary search over how many pairs to drop: log2(turns) renders, so 1,000 messages take ~10 renders, not 500.
    """
    low, high = 1, (len(history) + 1) // 2  # pairs to drop; dropping `high` pairs leaves no history
    while low < high:
        middle = (low + high) // 2
        if len(render(tokenizer, request, history[2 * middle:], document)) <= budget:
            high = middle
        else:
            low = middle + 1
    kept = history[2 * low:]
    return kept, render(tokenizer, request, kept, document)


def render(tokenizer: Any, request: ChatRequest, history: list[ChatTurn], document: str) -> list[int]:
    """Token ids of system + history + the new user turn, ending with the assistant prompt (+ answer_start);
    user text stays text."""
    escaper = Escaper(tokenizer)
    message = DOCUMENT_TEMPLATE.format(document=document, message=request.message) if document else request.message
    messages = [{"role": "system", "content": request.system}] if request.system.strip() else []
    messages += [{"role": t.role, "content": t.content} for t in history]
    messages.append({"role": "user", "content": message})
    messages = [{**m, "content": escaper.escape(m["content"])} for m in messages]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return escaper.encode(text + escaper.escape(request.answer_start))
    plain = "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
    return escaper.encode(plain + escaper.escape(request.answer_start), add_special_tokens=True)
