"""The prompt for translating one chunk (the Translate pane and `lmdesk translate`).

It returns ``list[ChatMessage]``: a system message with the rules (and the glossary entries the
chunk uses) and a user message with the text.
"""

from __future__ import annotations

from collections.abc import Iterable

from lmdesk.core.messages import ChatMessage
from lmdesk.core.text.languages import AUTO, language_name
from lmdesk.core.translate.glossary import GlossaryEntry, glossary_lines

__all__ = ["translate_messages"]


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
