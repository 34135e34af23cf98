"""Placeholder while the TranslatePane is being built (issue 4)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class TranslatePane(QWidget):
    """Temporary placeholder pane."""

    sig_error = Signal(str)
    """A one-line error for the window's banner."""

    def __init__(self, bridge, store, parent=None) -> None:
        super().__init__(parent)
        self.bridge, self.store = bridge, store
        QVBoxLayout(self).addWidget(QLabel("Not built yet"))
