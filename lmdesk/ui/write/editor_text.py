"""Measures of the Write editor's plain text: Qt positions ↔ string indices, and the word count.

The Write logic (lmdesk.core.write.run) works in Python string indices. Qt's QTextCursor counts
UTF-16 code units, so an emoji (outside the Basic Multilingual Plane) is one index there and two
positions here: `to_index` / `to_position` convert, and every offset crossing that line goes
through them.
"""

from __future__ import annotations

import re

_WORD_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]|[^\W_]+(?:['’-][^\W_]+)*")


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
