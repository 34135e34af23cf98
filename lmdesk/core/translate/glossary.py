"""The Translate glossary: terms to keep as they are or to translate one fixed way."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["GlossaryEntry", "glossary_lines", "parse_glossary"]


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
