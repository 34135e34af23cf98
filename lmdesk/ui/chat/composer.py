"""The composer: a multi-line input with Send/Stop, an edit mode, and a live token count."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget,
)

from lmdesk.core.text.chunk_budget import estimate_tokens


class Composer(QPlainTextEdit):
    """Multi-line input: Enter (or Ctrl+Enter) sends, Shift+Enter inserts a new line."""

    sig_submit = Signal()
    """Enter was pressed without Shift."""

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and not event.modifiers() & Qt.ShiftModifier:
            self.sig_submit.emit()
            return
        if event.key() == Qt.Key_Escape:
            event.ignore()  # the window's Stop / cancel-edit shortcut handles it
            return
        super().keyPressEvent(event)


class ContextMeter(QWidget):
    """Tokens used by the conversation against the model's context length."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setFixedSize(90, 8)
        self.label = QLabel("")
        self.label.setStyleSheet("color: palette(mid);")
        layout.addWidget(QLabel("Context"))
        layout.addWidget(self.bar)
        layout.addWidget(self.label)
        self.used, self.total, self.exact = 0, 0, False

    def set_usage(self, used: int, total: int, exact: bool = False) -> None:
        """Show `used` of `total` tokens (total 0: no model yet); `exact` drops the "~" of an estimate."""
        self.used, self.total, self.exact = used, total, exact
        self.bar.setRange(0, max(1, total))
        self.bar.setValue(min(used, max(1, total)))
        approx = "" if exact else "~"
        self.label.setText(f"{approx}{used:,} / {total:,} tokens" if total else f"{approx}{used:,} tokens")
        self.setToolTip(("Tokens" if exact else "Estimated tokens")
                        + " of this conversation's prompt, against the model's context length")


class ComposerPanel(QWidget):
    """Composer, edit-mode note, token estimate and the Settings / Stop / Send buttons."""

    sig_send = Signal()
    """The user asked to send (Enter or the Send button)."""
    sig_stop = Signal()
    """The user clicked Stop."""
    sig_settings = Signal()
    """The user asked for the conversation's settings."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.editing_id: int | None = None  # the user message being edited, or None
        self._draft = ""  # what the composer held before edit mode, given back when it ends
        self.context_left: int | None = None
        self.edit_note = QLabel("")
        self.edit_note.setStyleSheet("color: palette(link);")
        self.edit_note.hide()
        self.composer = Composer()
        self.composer.setPlaceholderText("Message (Enter to send, Shift+Enter for a new line)")
        self.composer.setMinimumHeight(48)
        self.composer.setMaximumHeight(76)
        self.tokens = QLabel("")
        self.tokens.setStyleSheet("color: palette(mid);")
        self.settings_button = QPushButton("Settings…")
        self.settings_button.setToolTip("System prompt, sampling and presets for this conversation")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop generating (Esc)")
        self.stop_button.setEnabled(False)
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        row = QHBoxLayout()
        row.addWidget(self.tokens, 1)
        row.addWidget(self.settings_button)
        row.addWidget(self.stop_button)
        row.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit_note)
        layout.addWidget(self.composer)
        layout.addLayout(row)
        self.composer.sig_submit.connect(self.sig_send)
        self.send_button.clicked.connect(self.sig_send)
        self.stop_button.clicked.connect(self.sig_stop)
        self.settings_button.clicked.connect(self.sig_settings)
        self.composer.textChanged.connect(self._update_count)
        self._update_count()

    def text(self) -> str:
        """The draft, stripped."""
        return self.composer.toPlainText().strip()

    def set_generating(self, on: bool) -> None:
        """Stop is live while a reply streams; Send waits for it to end."""
        self.stop_button.setEnabled(on)
        self.send_button.setEnabled(not on)

    def set_context_left(self, left: int | None) -> None:
        """Tokens the conversation leaves free in the context (None: unknown)."""
        self.context_left = left
        self._update_count()

    def begin_edit(self, message_id: int, text: str) -> None:
        """Put a user message in the composer; sending makes it a new branch."""
        if self.editing_id is None:
            self._draft = self.composer.toPlainText()
        self.editing_id = message_id
        self.composer.setPlainText(text)
        self.edit_note.setText("Editing a message: Enter resends it as a new branch, Esc cancels")
        self.edit_note.show()
        self.send_button.setText("Resend")
        self.composer.setFocus()
        self.composer.moveCursor(self.composer.textCursor().MoveOperation.End)

    def cancel_edit(self, restore: str | None = None) -> None:
        """Leave edit mode (the composer gets `restore`; None: the draft from before edit mode)."""
        if self.editing_id is None:
            return
        self.editing_id = None
        self.edit_note.hide()
        self.send_button.setText("Send")
        self.composer.setPlainText(self._draft if restore is None else restore)
        self._draft = ""

    def set_exact_count(self, draft_tokens: int, left: int) -> None:
        """Show the draft's count from the model's tokenizer and what the context has left after it."""
        self._show_count(f"Draft = {draft_tokens:,} tokens" if self.text() else "", left)

    def _update_count(self) -> None:
        n = estimate_tokens(self.composer.toPlainText())
        self._show_count(f"Draft ≈ {n:,} tokens" if n else "",
                         None if self.context_left is None else self.context_left - n)

    def _show_count(self, text: str, left: int | None) -> None:
        if left is not None:
            text += (" · " if text else "") + f"{left:,} left in context"
            self.tokens.setStyleSheet("color: #cf222e;" if left < 0 else "color: palette(mid);")
        self.tokens.setText(text)
