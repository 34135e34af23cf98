"""A first, simple chat: a transcript, a composer, Send and Stop. (The full pane is its own issue.)"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams
from lmdesk.core.stats import GenerationStats
from lmdesk.engine.bridge import EngineBridge


class Composer(QPlainTextEdit):
    """Multi-line input: Enter sends, Shift+Enter inserts a new line."""

    sig_submit = Signal()
    """Enter was pressed without Shift."""

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and not event.modifiers() & Qt.ShiftModifier:
            self.sig_submit.emit()
            return
        super().keyPressEvent(event)


def stats_line(stats: GenerationStats) -> str:
    """'42 tokens · 95.1 tok/s · first token 0.08 s' (+ why it ended, when not a normal stop)."""
    parts = [f"{stats.generated_tokens} tokens"]
    if stats.tokens_per_second:
        parts.append(f"{stats.tokens_per_second:.1f} tok/s")
    if stats.time_to_first_token is not None:
        parts.append(f"first token {stats.time_to_first_token:.2f} s")
    if stats.stop_reason == "cancelled":
        parts.append("stopped")
    elif stats.stop_reason == "length":
        parts.append("max tokens reached")
    if stats.dropped_messages:
        parts.append(f"{stats.dropped_messages} old messages left out of context")
    return " · ".join(parts)


class ChatBox(QWidget):
    """Sends the conversation to the engine and streams the reply into the transcript."""

    sig_reply_finished = Signal(object)
    """A reply ended (GenerationStats), normally or stopped."""

    sig_error = Signal(str)
    """Generation failed; the one-line message for the banner."""

    def __init__(self, bridge: EngineBridge, parent=None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.history: list[ChatMessage] = []
        self.system_prompt = ""
        self.params = GenerationParams()
        self._req_id: int | None = None  # the reply streaming now; chunks of any other id are stale
        self._reply = ""

        self.transcript = QTextBrowser()
        self.transcript.setOpenLinks(False)  # links never navigate inside the app
        self.transcript.setPlaceholderText("Ask anything. Replies stream here.")
        self.composer = Composer()
        self.composer.setPlaceholderText("Message (Enter to send, Shift+Enter for a new line)")
        self.composer.setMaximumHeight(110)
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop generating (Esc)")
        self.stop_button.setEnabled(False)
        self.clear_button = QPushButton("New chat")
        self.hint = QLabel("")
        self.hint.setStyleSheet("color: palette(mid);")

        buttons = QHBoxLayout()
        buttons.addWidget(self.hint, 1)
        buttons.addWidget(self.clear_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.transcript, 1)
        layout.addWidget(self.composer)
        layout.addLayout(buttons)

        self.composer.sig_submit.connect(self.send)
        self.send_button.clicked.connect(self.send)
        self.stop_button.clicked.connect(self.stop)
        self.clear_button.clicked.connect(self.clear)
        QShortcut(QKeySequence(Qt.Key_Escape), self, activated=self.stop)
        bridge.sig_chunk.connect(self._on_chunk)
        bridge.sig_finished.connect(self._on_finished)
        bridge.sig_failed.connect(self._on_failed)

    @property
    def generating(self) -> bool:
        """A reply is streaming."""
        return self._req_id is not None

    def send(self) -> None:
        """Send the composer's text as the next user turn."""
        text = self.composer.toPlainText().strip()
        if not text or self.generating:
            return
        if self.bridge.model is None:
            self.sig_error.emit("No model is loaded yet — wait for it to finish loading, or pick one above.")
            return
        self.composer.clear()
        self.history.append(ChatMessage("user", text))
        self._append_block("You", text)
        self._append_header("Assistant")
        self._reply = ""
        messages = ([ChatMessage("system", self.system_prompt)] if self.system_prompt else []) + self.history
        self._req_id = self.bridge.generate(messages, self.params)
        self._set_generating(True)

    def stop(self) -> None:
        """Cancel the streaming reply; what arrived so far is kept."""
        if self._req_id is not None:
            self.bridge.cancel(self._req_id)

    def clear(self) -> None:
        """Start a new conversation (stops a running reply first)."""
        self.stop()
        self._req_id = None
        self._set_generating(False)
        self.history.clear()
        self.transcript.clear()

    # -- engine signals (GUI thread) -------------------------------------------------------
    def _on_chunk(self, req_id: int, text: str) -> None:
        if req_id != self._req_id:
            return
        self._reply += text
        # Appending at the end is cheap: no re-layout of the whole transcript per batch.
        cursor = self.transcript.textCursor()
        cursor.movePosition(QTextCursor.End)
        cursor.insertText(text)
        self.transcript.ensureCursorVisible()

    def _on_finished(self, req_id: int, reason: str, stats: GenerationStats) -> None:
        if req_id != self._req_id:
            return
        self._req_id = None
        self._set_generating(False)
        if self._reply:
            self.history.append(ChatMessage("assistant", self._reply))
        self._append_note(stats_line(stats))
        self.sig_reply_finished.emit(stats)

    def _on_failed(self, req_id: int, message: str) -> None:
        if req_id != self._req_id:
            return
        self._req_id = None
        self._set_generating(False)
        # The question was not answered: take it out of the history and give the text back,
        # so nothing the user typed is lost.
        if self.history and self.history[-1].role == "user":
            unanswered = self.history.pop().content
            if not self.composer.toPlainText().strip():
                self.composer.setPlainText(unanswered)
        self._append_note(f"error: {message}")
        self.sig_error.emit(message)

    # -- transcript helpers ----------------------------------------------------------------
    def _set_generating(self, on: bool) -> None:
        self.stop_button.setEnabled(on)
        self.send_button.setEnabled(not on)
        self.hint.setText("Generating… (Esc to stop)" if on else "")

    def _append_header(self, who: str) -> None:
        self.transcript.append(f"<p style='margin-top:10px'><b>{html.escape(who)}</b></p>")
        # A fresh empty paragraph for the streamed text, so it is not bold.
        self.transcript.append("")

    def _append_block(self, who: str, text: str) -> None:
        self._append_header(who)
        cursor = self.transcript.textCursor()
        cursor.movePosition(QTextCursor.End)
        cursor.insertText(text)

    def _append_note(self, text: str) -> None:
        self.transcript.append(f"<p style='color:gray; font-size:small'>{html.escape(text)}</p>")
        self.transcript.ensureCursorVisible()
