"""One Write action from start to review, without Qt: what it works on, its prompt, its result.

Offsets here are Python string indices into the document's plain text. Qt's QTextCursor counts
UTF-16 code units, so an emoji (outside the Basic Multilingual Plane) is one index here and two
positions there: `to_index` / `to_position` convert, and every offset crossing that line goes
through them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams
from lmdesk.core.tasks import ACTIONS, WriteAction, clean_reply, continuation_glue, max_new_tokens, write_messages
from lmdesk.core.text_diff import Hunk, diff_words
from lmdesk.core.chunk_budget import estimate_tokens

_WORD_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]|[^\W_]+(?:['’-][^\W_]+)*")
_TEMPLATE_TOKENS = 24  # chat-template markup around the two messages


def count_words(text: str) -> int:
    """Words for the status line; each Chinese/Japanese character counts as one."""
    return len(_WORD_RE.findall(text))


def to_index(text: str, position: int) -> int:
    """The string index of a Qt (UTF-16) position in `text`."""
    if text.isascii() or all(ord(ch) <= 0xFFFF for ch in text):
        return position
    units = 0
    for i, ch in enumerate(text):
        if units >= position:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text)


def to_position(text: str, index: int) -> int:
    """The Qt (UTF-16) position of a string index in `text`."""
    return index + sum(1 for ch in text[:index] if ord(ch) > 0xFFFF)


def _prompt_tokens(messages: list[ChatMessage]) -> int:
    return sum(estimate_tokens(m.content) for m in messages) + _TEMPLATE_TOKENS


class ActionError(ValueError):
    """The action cannot run as asked (nothing to work on, no instruction, too long)."""


@dataclass
class ActionRun:
    """A Write action: the document range it replaces, its prompt, and what came back."""

    action: WriteAction
    start: int  # document range replaced by the result (start == end: an insertion at the cursor)
    end: int
    original: str  # document[start:end]
    before: str  # CONTINUE: the text before the cursor (the model continues it)
    messages: list[ChatMessage]
    params: GenerationParams
    req_id: int | None = None
    pieces: list[str] = field(default_factory=list)
    result: str | None = None  # the cleaned result, shaped to replace `original`
    hunks: list[Hunk] = field(default_factory=list)
    stop_reason: str = ""

    @property
    def raw(self) -> str:
        """The model's answer as streamed."""
        return "".join(self.pieces)

    @property
    def inserts(self) -> bool:
        """True when the result is inserted at the cursor rather than replacing text."""
        return ACTIONS[self.action].inserts

    def finish(self, reason: str) -> str:
        """Clean the answer, shape it to fit the document, diff it; returns the result."""
        self.stop_reason = reason
        raw = self.raw
        cleaned = clean_reply(raw, self.action, source=self.before if self.inserts else self.original)
        if self.inserts:
            result = continuation_glue(self.before, cleaned.rstrip()) if cleaned.strip() else ""
        elif cleaned.strip():
            # The model sees the text, not the whitespace around the selection: keep the source's,
            # so a rewritten paragraph still ends with its blank line.
            lead = self.original[: len(self.original) - len(self.original.lstrip())]
            trail = self.original[len(self.original.rstrip()):]
            result = lead + cleaned.strip() + trail
        else:
            result = ""
        self.result = result
        self.hunks = diff_words(self.original, result) if result else []
        return result


def prepare_action(
    action: WriteAction,
    text: str,
    sel_start: int,
    sel_end: int,
    *,
    n_ctx: int,
    instruction: str = "",
    temperature: float = 0.5,
    seed: int | None = None,
) -> ActionRun:
    """The run of `action` on `text` with the selection [sel_start, sel_end) (string indices).

    No selection means the whole document; CONTINUE writes at the selection's end (the cursor)
    and sees the text on both sides. Raises ActionError when there is nothing to do.
    """
    spec = ACTIONS[action]
    if spec.needs_instruction and not instruction.strip():
        raise ActionError("Type an instruction first (for example: “Translate the jargon into plain words”).")
    if spec.inserts:
        start = end = sel_end
        before, original = text[:start], ""
        if not before.strip():
            raise ActionError("Write something first: Continue writing picks up where your text stops.")
        # Long documents: show the model less of both sides until prompt + answer fit.
        chars = 8000
        while True:
            messages = write_messages(action, before, after=text[end:], max_context_chars=chars)
            if chars <= 250 or _prompt_tokens(messages) < n_ctx // 2:
                break
            chars //= 2
        work = before[-chars:]
    else:
        start, end = (sel_start, sel_end) if sel_end > sel_start else (0, len(text))
        before, original = text[:start], text[start:end]
        if not original.strip():
            raise ActionError("There is no text to work on: type some, or select a passage.")
        messages = write_messages(action, original, instruction=instruction)
        work = original
    prompt = _prompt_tokens(messages)
    room = n_ctx - prompt - max(16, n_ctx // 32)
    if room < 32:
        raise ActionError(
            f"The text is too long for the model's context (about {prompt:,} of {n_ctx:,} tokens): "
            "select a shorter passage, or load the model with a larger context."
        )
    limit = min(room, max_new_tokens(action, estimate_tokens(work)))
    params = GenerationParams(max_tokens=limit, temperature=temperature, seed=seed)
    return ActionRun(action, start, end, original, before, messages, params)
