"""A non-modal message strip at the top of the window: errors never block the app."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton

log = logging.getLogger("lmdesk.ui")

_STYLES = {
    "error": "background:#fdecea; color:#611a15; border:1px solid #f5c2bd; border-radius:4px;",
    "info": "background:#e8f1fd; color:#0b3a6f; border:1px solid #b8d4f5; border-radius:4px;",
}


class Banner(QFrame):
    """Shows one message (error or info) with a close button; hidden when empty."""

    sig_dismissed = Signal()
    """The user closed the banner."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.kind = ""
        self.hide()

    def show_message(self, text: str, kind: str = "error") -> None:
        """Display `text`; errors are also logged so tests and bug reports see them."""
        (log.warning if kind == "error" else log.info)("banner: %s", text)
        self.kind = kind
        self.setStyleSheet(f"QFrame#banner {{{_STYLES[kind]}}} QLabel {{border:none;}}")
        self.label.setText(text)
        self.show()

    def dismiss(self) -> None:
        """Hide and clear the message."""
        self.hide()
        self.label.clear()
        self.kind = ""
        self.sig_dismissed.emit()
