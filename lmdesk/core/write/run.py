"""One Write action from start to result, shared by the Write pane and `lmdesk write`.

`prepare_action` decides what the action works on, builds its prompt and its token budget;
`ActionRun.finish` cleans the model's answer and shapes it to replace that range. Both callers go
through here, so the pane and the command send the same prompt with the same limits for the same
text. Offsets are Python string indices into the document's plain text (the pane converts Qt's
UTF-16 positions before and after).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams
from lmdesk.core.text.chunk_budget import estimate_tokens
from lmdesk.core.text.reply_clean import clean_reply
from lmdesk.core.text.word_diff import Hunk, diff_words
from lmdesk.core.write.actions import ACTIONS, WriteAction, continuation_glue, max_new_tokens, write_messages

__all__ = ["ActionError", "ActionRun", "TextTooLongError", "prepare_action"]

TEMPLATE_TOKENS = 24  # chat-template markup around the two messages
MIN_ANSWER_TOKENS = 32  # below this much room for the answer, the action is refused
CONTINUE_CONTEXT_CHARS = 8000  # Continue shows the model at most this much text on each side


def _prompt_tokens(messages: list[ChatMessage]) -> int:
    return sum(estimate_tokens(m.content) for m in messages) + TEMPLATE_TOKENS


def _reserve(n_ctx: int) -> int:
    """Tokens kept free besides the prompt and the answer (stop tokens, estimate error)."""
    return max(16, n_ctx // 32)


class ActionError(ValueError):
    """The action cannot run as asked (nothing to work on, no instruction, too long)."""


class TextTooLongError(ActionError):
    """The text's prompt leaves too little room for an answer in the model's context."""

    def __init__(self, prompt_tokens: int, context_length: int) -> None:
        super().__init__(
            f"The text is too long for the model's context (about {prompt_tokens:,} of {context_length:,} tokens): "
            "select a shorter passage, or load the model with a larger context."
        )
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length


@dataclass
class ActionRun:
    """A Write action: the document range it replaces, its prompt, and what came back."""

    action: WriteAction
    start: int  # document range replaced by the result (start == end: an insertion at the cursor)
    end: int
    original: str  # document[start:end]
    before: str  # the text before `start` (CONTINUE: what the model continues)
    messages: list[ChatMessage]
    params: GenerationParams
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

    def applied_to(self, document: str) -> str:
        """`document` (the text the run was prepared on) with the finished result in place."""
        if self.result is None:
            raise ValueError("the run has not finished")
        return document[: self.start] + self.result + document[self.end:]


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
    max_tokens: int | None = None,
) -> ActionRun:
    """The run of `action` on `text` with the selection [sel_start, sel_end) (string indices).

    No selection means the whole document; CONTINUE writes at the selection's end (the cursor)
    and sees the text on both sides. The answer may take what the context has left, up to what
    the action needs for this much text, and never more than `max_tokens` when it is given.
    Raises ActionError when there is nothing to do, TextTooLongError when it cannot fit.
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
        chars = CONTINUE_CONTEXT_CHARS
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
    room = n_ctx - prompt - _reserve(n_ctx)
    if room < MIN_ANSWER_TOKENS:
        raise TextTooLongError(prompt, n_ctx)
    limit = min(room, max_new_tokens(action, estimate_tokens(work)), max_tokens or room)
    params = GenerationParams(max_tokens=limit, temperature=temperature, seed=seed)
    return ActionRun(action, start, end, original, before, messages, params)
