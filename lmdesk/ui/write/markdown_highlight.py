"""A light Markdown highlighter for the Write editor: the text stays plain (what is saved and sent to
the model is exactly what is typed); headings, list markers, emphasis and code are only coloured."""

from __future__ import annotations

import re

from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextDocument

from lmdesk.ui.write.editor_text import to_position

_HEADING = re.compile(r"^#{1,6}\s.*$")
_MARKER = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s|^\s*>\s?")
_INLINE = (
    (re.compile(r"`[^`\n]+`"), "code"),
    (re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__"), "bold"),
    (re.compile(r"(?<![*\w])\*[^*\s][^*\n]*\*(?!\*)|(?<![_\w])_[^_\s][^_\n]*_(?!\w)"), "italic"),
)
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


class MarkdownHighlighter(QSyntaxHighlighter):
    """Colours Markdown syntax in a QTextDocument; block state 1 means 'inside a fenced code block'."""

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        accent = QColor("#3b82c4")
        self.formats: dict[str, QTextCharFormat] = {}
        for name in ("heading", "marker", "code", "bold", "italic"):
            self.formats[name] = QTextCharFormat()
        self.formats["heading"].setFontWeight(QFont.Bold)
        self.formats["heading"].setForeground(accent)
        self.formats["marker"].setForeground(accent)
        self.formats["marker"].setFontWeight(QFont.Bold)
        self.formats["code"].setFontFamilies(["monospace"])
        self.formats["code"].setForeground(QColor("#b35900"))
        self.formats["bold"].setFontWeight(QFont.Bold)
        self.formats["italic"].setFontItalic(True)

    def highlightBlock(self, text: str) -> None:  # noqa: N802 (Qt name)
        in_code = self.previousBlockState() == 1
        if _FENCE.match(text):
            self.setFormat(0, len(text), self.formats["code"])
            self.setCurrentBlockState(0 if in_code else 1)
            return
        self.setCurrentBlockState(1 if in_code else 0)
        if in_code:
            self.setFormat(0, len(text), self.formats["code"])
            return
        if _HEADING.match(text):
            self.setFormat(0, len(text), self.formats["heading"])
            return
        m = _MARKER.match(text)
        if m:
            self._span(text, 0, m.end(), "marker")
        for pattern, name in _INLINE:
            for m in pattern.finditer(text):
                self._span(text, m.start(), m.end(), name)

    def _span(self, text: str, start: int, end: int, name: str) -> None:
        """Format text[start:end]; Qt counts UTF-16 units, so an emoji before it shifts the span."""
        a, b = to_position(text, start), to_position(text, end)
        self.setFormat(a, b - a, self.formats[name])
