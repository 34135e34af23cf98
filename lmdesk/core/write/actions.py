"""The actions of the Write pane (and `lmdesk write`): what each does, and its prompt.

Every builder returns ``list[ChatMessage]``: a system message with the rules and a user message
with the text. The user's text is put between ``<text>`` tags so that a text that itself reads
like an instruction is not obeyed; `clean_reply` (lmdesk.core.text.reply_clean) removes the tags
if a model echoes them, together with the chatter around the result.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum

from lmdesk.core.messages import ChatMessage

__all__ = [
    "ACTIONS", "ActionSpec", "WriteAction", "continuation_glue", "max_new_tokens", "parse_action",
    "write_messages",
]

_SAME_LANGUAGE = "Reply in the same language as the text."
_ONLY_RESULT = (
    "Reply with the resulting text only: no introduction, no explanation, no quotes, no notes."
)


class WriteAction(str, Enum):
    """The actions of the Write pane (values are the CLI's `--action` names)."""

    CONTINUE = "continue"
    REWRITE = "rewrite"
    PROOFREAD = "proofread"
    SHORTEN = "shorten"
    EXPAND = "expand"
    FORMAL = "formal"
    CASUAL = "casual"
    SUMMARISE = "summarise"
    BULLETS = "bullets"
    CUSTOM = "custom"


@dataclass(frozen=True)
class ActionSpec:
    """How one Write action is shown and prompted."""

    action: WriteAction
    label: str  # button / menu text
    instruction: str  # what the model is told to do ("" for CUSTOM: the user writes it)
    output_ratio: float  # expected answer tokens per source token, for max_tokens
    inserts: bool = False  # True: the answer is inserted at the cursor instead of replacing text
    needs_instruction: bool = False


ACTIONS: dict[WriteAction, ActionSpec] = {
    spec.action: spec
    for spec in (
        ActionSpec(
            WriteAction.CONTINUE, "Continue writing",
            "Continue the text from where it stops, in the same language, style and tone. "
            "Write only the new text that comes next (a few sentences), not the text already written.",
            1.0, inserts=True,
        ),
        ActionSpec(
            WriteAction.REWRITE, "Rewrite",
            "Rewrite the text so that it reads better: clearer and more fluent, with the same meaning and tone.",
            1.3,
        ),
        ActionSpec(
            WriteAction.PROOFREAD, "Proofread",
            "Correct the spelling, grammar and punctuation mistakes in the text. Change nothing else: "
            "keep the wording, style, meaning and formatting. If there are no mistakes, return the text unchanged.",
            1.1,
        ),
        ActionSpec(
            WriteAction.SHORTEN, "Shorten",
            "Make the text shorter, about half its length, keeping the key points and the tone.", 0.8,
        ),
        ActionSpec(
            WriteAction.EXPAND, "Expand",
            "Expand the text with more detail and explanation, keeping its meaning and tone.", 2.5,
        ),
        ActionSpec(
            WriteAction.FORMAL, "Make formal",
            "Rewrite the text in a formal, professional tone, keeping its meaning.", 1.4,
        ),
        ActionSpec(
            WriteAction.CASUAL, "Make casual",
            "Rewrite the text in a casual, friendly tone, keeping its meaning.", 1.4,
        ),
        ActionSpec(
            WriteAction.SUMMARISE, "Summarise",
            "Summarise the text in a few sentences, keeping only the most important points.", 0.6,
        ),
        ActionSpec(
            WriteAction.BULLETS, "Bullet points",
            "Turn the text into a concise Markdown bullet list: one line starting with '- ' per key point.",
            1.0,
        ),
        ActionSpec(WriteAction.CUSTOM, "Custom instruction…", "", 2.0, needs_instruction=True),
    )
}


def parse_action(name: str) -> WriteAction:
    """The action for a CLI name or label, case-insensitive ('make formal', 'summarize' work too)."""
    key = name.strip().lower().replace("_", " ").replace("-", " ").rstrip("…. ")
    key = {"summarize": "summarise", "bullet points": "bullets", "make formal": "formal",
           "make casual": "casual", "continue writing": "continue", "custom instruction": "custom"}.get(key, key)
    try:
        return WriteAction(key)
    except ValueError:
        names = ", ".join(a.value for a in WriteAction)
        raise ValueError(f"unknown action {name!r} (choose from: {names})") from None


def max_new_tokens(action: WriteAction, source_tokens: int, *, floor: int = 128) -> int:
    """A generation limit that lets the action finish: source tokens × its ratio, plus slack."""
    return max(floor, math.ceil(ACTIONS[action].output_ratio * source_tokens) + 64)


def write_messages(
    action: WriteAction,
    text: str,
    *,
    instruction: str = "",
    after: str = "",
    max_context_chars: int = 8000,
) -> list[ChatMessage]:
    """The prompt for a Write action on `text` (the selection, or the whole document).

    For CONTINUE, `text` is what stands before the cursor and `after` what follows it; only the
    last / first `max_context_chars` of them are sent (the end of `text` matters most).
    For CUSTOM, `instruction` is the user's own and is required.
    """
    spec = ACTIONS[action]
    todo = instruction.strip() if action is WriteAction.CUSTOM else spec.instruction
    if action is WriteAction.CUSTOM and not todo:
        raise ValueError("the custom action needs an instruction")
    system = "You are a careful writing assistant. " + _ONLY_RESULT
    if action is WriteAction.CONTINUE:
        before = text[-max_context_chars:]
        user = f"{todo} {_SAME_LANGUAGE}\n\n<text>\n{before}\n</text>"
        tail = after[:max_context_chars].strip()
        if tail:
            user += (
                "\n\nThe document goes on after the gap with the following text. Write only what fills "
                f"the gap, so that it leads into it:\n<after>\n{tail}\n</after>"
            )
        return [ChatMessage("system", system), ChatMessage("user", user)]
    user = f"{todo} {_SAME_LANGUAGE}\n\n<text>\n{text}\n</text>"
    return [ChatMessage("system", system), ChatMessage("user", user)]


def continuation_glue(before: str, addition: str) -> str:
    """`addition` with a leading space when it would otherwise run into the word before it."""
    if before and addition and not before[-1].isspace() and not addition[0].isspace():
        if before[-1].isalnum() or before[-1] in ".!?,;:)\"'”’":
            if addition[0].isalnum() and not _is_cjk(addition[0]) and not _is_cjk(before[-1]):
                return " " + addition
    return addition


def _is_cjk(ch: str) -> bool:
    """True for scripts written without spaces between words."""
    return bool(re.match(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]", ch))
