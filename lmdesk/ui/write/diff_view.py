"""The result of a Write action: a streaming preview, then a word-level diff to review.

Each change is a link: clicking it toggles between accepted (old text struck out in red, new text
in green) and rejected (old text kept, underlined; the proposal struck out in grey). All changes start
accepted, so "Accept all" and "Apply selected" agree until the user rejects something.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import QPoint, QUrl, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QTextBrowser, QWidget

from lmdesk.core.text.word_diff import Hunk, change_indices

_OLD_ON = "background:#ffd7d5; color:#82071e; text-decoration:line-through;"
_NEW_ON = "background:#ccf5d6; color:#055d20;"
_OLD_OFF = "text-decoration:underline;"  # kept: plain text in the theme's colour, marked clickable
_NEW_OFF = "color:#8c959f; text-decoration:line-through;"
_HREF = "change:"


def _visible(text: str) -> str:
    """Escaped text of a change, with its line breaks marked (an added blank line is otherwise
    invisible) and an all-space change shown as a middle dot per space."""
    if text.strip(" ") == "":
        return "·" * len(text)
    return html.escape(text).replace("\n", "↵\n")


class DiffView(QTextBrowser):
    """Shows streamed text, then a diff whose changes the user accepts or rejects one by one."""

    sig_choice_changed = Signal(int, int)
    """(changes accepted, changes in total) after the diff is shown and after each toggle."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.hunks: list[Hunk] = []
        self.accepted: set[int] = set()
        self.anchorClicked.connect(self._on_anchor)

    # -- streaming preview --------------------------------------------------------------------------
    def show_text(self, text: str = "") -> None:
        """Plain text (the preview while the answer streams)."""
        self.hunks, self.accepted = [], set()
        self.setPlainText(text)

    def append_text(self, text: str) -> None:
        """More streamed text, appended at the end without re-laying out the rest."""
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.End)
        cursor.insertText(text)
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    # -- diff ---------------------------------------------------------------------------------------
    @property
    def changes(self) -> list[int]:
        """Indices of the hunks that are changes."""
        return change_indices(self.hunks)

    def show_diff(self, hunks: Sequence[Hunk]) -> None:
        """Render `hunks` with every change accepted."""
        self.hunks = list(hunks)
        self.accepted = set(self.changes)
        self._render(scroll_top=True)

    def toggle(self, index: int) -> None:
        """Accept a rejected change or reject an accepted one."""
        if index not in self.changes:
            return
        self.accepted ^= {index}
        self._render()

    def set_all(self, accepted: bool) -> None:
        """Accept (or reject) every change."""
        self.accepted = set(self.changes) if accepted else set()
        self._render()

    def change_point(self, index: int) -> QPoint:
        """Viewport coordinates of the middle of change `index`'s first character (for tests)."""
        href = f"{_HREF}{index}"
        block = self.document().begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                frag = it.fragment()
                if frag.charFormat().anchorHref() == href:
                    cursor = QTextCursor(self.document())
                    cursor.setPosition(frag.position() + 1)
                    rect = self.cursorRect(cursor)
                    return QPoint(max(0, rect.left() - 3), rect.center().y())
                it += 1
            block = block.next()
        raise KeyError(index)

    def _on_anchor(self, url: QUrl) -> None:
        target = url.toString()
        if target.startswith(_HREF):
            self.toggle(int(target[len(_HREF):]))

    def _render(self, scroll_top: bool = False) -> None:
        value = self.verticalScrollBar().value()
        parts = ['<div style="white-space:pre-wrap">']
        for i, h in enumerate(self.hunks):
            if not h.is_change:
                parts.append(html.escape(h.old_text))
                continue
            on = i in self.accepted
            title = "Click to reject this change" if on else "Click to accept this change"
            parts.append(f'<a href="{_HREF}{i}" title="{title}" style="text-decoration:none; color:inherit">')
            if h.old_text:
                parts.append(f'<span style="{_OLD_ON if on else _OLD_OFF}">{_visible(h.old_text)}</span>')
            if h.new_text:
                parts.append(f'<span style="{_NEW_ON if on else _NEW_OFF}">{_visible(h.new_text)}</span>')
            parts.append("</a>")
        parts.append("</div>")
        self.setHtml("".join(parts))
        self.verticalScrollBar().setValue(0 if scroll_top else value)
        self.sig_choice_changed.emit(len(self.accepted), len(self.changes))
