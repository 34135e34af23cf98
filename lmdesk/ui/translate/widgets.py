"""Widgets of the Translate pane: language pickers and the streaming output view."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor, QTextOption
from PySide6.QtWidgets import QComboBox, QPlainTextEdit, QWidget

from lmdesk.core.text.languages import AUTO, LANGUAGES, find_language, is_rtl


class LanguagePicker(QComboBox):
    """A combo box of LANGUAGES (codes as item data), with 'Detect language' first if `auto`."""

    def __init__(self, auto: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._auto = auto
        if auto:
            self.addItem("Detect language", AUTO)
        for lang in LANGUAGES:
            self.addItem(lang.label, lang.code)
        self.setMaxVisibleItems(20)
        self.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(18)

    def code(self) -> str:
        """The chosen language code (AUTO for detection)."""
        return self.currentData()

    def set_code(self, code: str) -> bool:
        """Choose a language by code or alias; False if it is not offered."""
        if code != AUTO:
            lang = find_language(code)
            if lang is None:
                return False
            code = lang.code
        i = self.findData(code)
        if i < 0:
            return False
        self.setCurrentIndex(i)
        return True

    def show_detected(self, code: str | None) -> None:
        """Name the detected language on the 'Detect language' item (None: detection pending)."""
        if not self._auto:
            return
        lang = find_language(code) if code else None
        self.setItemText(0, f"Detect language — {lang.name}" if lang else "Detect language")


def set_text_direction(edit: QPlainTextEdit, code: str) -> None:
    """Lay `edit` out right to left for RTL languages (Arabic, Hebrew, …), else left to right.

    The document's default text option decides the direction of paragraphs Qt cannot decide from
    their own letters (digits, punctuation, mixed lines) and the alignment of all of them; the
    widget's layout direction moves the scroll bar and the cursor's start to the right side.
    """
    rtl = is_rtl(code) if code and code != AUTO else False
    direction = Qt.RightToLeft if rtl else Qt.LeftToRight
    edit.setLayoutDirection(direction)
    doc = edit.document()
    option = QTextOption(doc.defaultTextOption())
    option.setTextDirection(direction)
    option.setAlignment(Qt.AlignRight | Qt.AlignAbsolute if rtl else Qt.AlignLeft | Qt.AlignAbsolute)
    doc.setDefaultTextOption(option)


class OutputView(QPlainTextEdit):
    """Read-only translation output: finished chunks are 'committed', the running one streams after.

    Appending at the end is cheap, so a long translation never re-lays out the whole document per
    batch; when a chunk finishes, only its streamed raw text is replaced by the cleaned, reassembled
    piece (the plan's output always extends what was committed before).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setUndoRedoEnabled(False)
        self._committed = ""  # the plan output shown above the streaming tail
        self._commit_pos = 0  # where that tail starts, in Qt's (UTF-16) positions

    @property
    def committed_text(self) -> str:
        """The finished part of the output."""
        return self._committed

    def reset(self, text: str = "") -> None:
        """Show `text` as the whole, committed output."""
        self.setPlainText(text)
        self._committed = text
        self._commit_pos = self._end().position()

    def begin_stream(self, prefix: str) -> None:
        """A chunk starts: show its Markdown marker (kept from the source) before its text."""
        self.discard_stream()
        self.append_stream(prefix)

    def append_stream(self, text: str) -> None:
        """More of the running chunk's answer."""
        if not text:
            return
        bar = self.verticalScrollBar()
        follow = bar.value() >= bar.maximum() - 4  # keep following the end unless the user scrolled up
        self._end().insertText(text)
        if follow:
            bar.setValue(bar.maximum())

    def discard_stream(self) -> None:
        """Remove the running chunk's text (Stop, or before its cleaned version is committed)."""
        cursor = self._end()
        if cursor.position() > self._commit_pos:
            cursor.setPosition(self._commit_pos, QTextCursor.KeepAnchor)
            cursor.removeSelectedText()

    def commit(self, output: str) -> None:
        """Replace the streamed tail by the plan's output so far."""
        self.discard_stream()
        if output.startswith(self._committed):
            self._end().insertText(output[len(self._committed):])
            self._committed = output
            self._commit_pos = self._end().position()
        else:  # cannot happen with reassemble(partial=True); be safe anyway
            self.reset(output)

    def _end(self) -> QTextCursor:
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.End)
        return cursor
