"""Prompts for the Write and Translate panes (and `lmdesk write` / `lmdesk translate`).

Every builder returns ``list[ChatMessage]``: a system message with the rules and a user message
with the text. The user's text is put between ``<text>`` tags for Write actions so that a text
that itself reads like an instruction is not obeyed; `clean_reply` removes the tags if a model
echoes them. Replies are cleaned of chatter by `clean_reply` (lmdesk.core.reply_clean,
re-exported here).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from lmdesk.core.languages import AUTO, language_name
from lmdesk.core.messages import ChatMessage
from lmdesk.core.reply_clean import TRANSLATE, clean_reply

__all__ = [
    "ACTIONS", "TRANSLATE", "ActionSpec", "GlossaryEntry", "WriteAction", "clean_reply",
    "continuation_glue", "glossary_lines", "max_new_tokens", "parse_action", "parse_glossary",
    "translate_messages", "write_messages",
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


# --- translation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GlossaryEntry:
    """A term to keep as is (`translation` None) or to translate one fixed way."""

    term: str
    translation: str | None = None


def parse_glossary(text: str) -> list[GlossaryEntry]:
    """Entries from lines like 'term = translation', 'term -> translation' or a bare 'term'
    (kept as is); blank lines and lines starting with '#' are ignored."""
    entries: list[GlossaryEntry] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        term, _, target = _split_entry(line)
        if term:
            entries.append(GlossaryEntry(term, target or None))
    return entries


def _split_entry(line: str) -> tuple[str, str, str]:
    """(term, separator, translation) of one glossary line."""
    m = re.match(r"(.+?)\s*(=>|->|→|=|\t)\s*(.*)$", line)
    if not m:
        return line, "", ""
    return m.group(1).strip(), m.group(2), m.group(3).strip()


def glossary_lines(glossary: Iterable[GlossaryEntry], text: str | None = None) -> list[str]:
    """Prompt lines for the entries whose term occurs in `text` (all when text is None)."""
    lines = []
    low = text.casefold() if text is not None else None
    for e in glossary:
        if low is not None and e.term.casefold() not in low:
            continue  # an entry the chunk doesn't use only costs tokens and distracts small models
        if e.translation:
            lines.append(f'- "{e.term}" → "{e.translation}"')
        else:
            lines.append(f'- "{e.term}" → keep as is, untranslated')
    return lines


def translate_messages(
    text: str,
    target: str,
    source: str = AUTO,
    *,
    glossary: Iterable[GlossaryEntry] = (),
    context: str = "",
    filter_glossary: bool = True,
) -> list[ChatMessage]:
    """The prompt to translate `text` (one chunk) into `target`; source 'auto' means detect.

    `context` is the end of the text before this chunk (see chunking.previous_tail): shown to
    the model for coherence, marked as not to be translated. Only glossary entries whose term
    occurs in the chunk are included. For chunking.plan_budget's `prompt_overhead`, count the
    tokens of ``translate_messages("", …, context=<longest tail>, filter_glossary=False)``
    rendered with the chat template: an upper bound for every chunk.
    """
    if not target or target == AUTO:
        raise ValueError("a target language is required")
    to = language_name(target)
    if source and source != AUTO:
        task = f"Translate the user's text from {language_name(source)} into {to}."
    else:
        task = f"Detect the language of the user's text and translate it into {to}."
    rules = [
        "You are a professional translator.",
        task,
        f"Reply with the {to} translation only: no notes, no explanations, no quotes.",
        "Keep the formatting, line breaks, numbers, URLs, code and names.",
    ]
    terms = glossary_lines(glossary, text if filter_glossary else None)
    if terms:
        rules.append("Use this glossary:\n" + "\n".join(terms))
    user = ""
    if context.strip():
        user += f"(Context, do not translate: …{context.strip()})\n\n"
    user += f"Translate into {to}:\n\n{text}"
    return [ChatMessage("system", "\n".join(rules)), ChatMessage("user", user)]
