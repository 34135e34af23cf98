"""Keyboard shortcuts: one table used both to bind the actions and to list them in Help → Shortcuts."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout


@dataclass(frozen=True)
class Shortcut:
    """A named action's key binding (`keys` in QKeySequence portable text; empty: handled by a widget)."""

    name: str
    keys: str
    description: str
    shown: str = ""  # how the dialog writes it, when it differs from `keys`


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("new_chat", "Ctrl+N", "New chat"),
    Shortcut("search", "Ctrl+F", "Search chats"),
    Shortcut("send", "", "Send the message", "Enter or Ctrl+Enter"),
    Shortcut("newline", "", "New line in the message", "Shift+Enter"),
    Shortcut("stop", "Esc", "Stop the reply (or cancel an edit)"),
    Shortcut("copy_last", "Ctrl+Shift+C", "Copy the last reply"),
    Shortcut("regenerate", "Ctrl+R", "Regenerate the last reply"),
    Shortcut("settings", "Ctrl+,", "Chat settings"),
    Shortcut("rename", "", "Rename the selected chat (in the list)", "F2"),
    Shortcut("delete", "", "Delete the selected chat (in the list)", "Del"),
    Shortcut("shortcuts", "F1", "Show this list"),
    Shortcut("quit", "Ctrl+Q", "Quit"),
)
_BY_NAME = {s.name: s for s in SHORTCUTS}


def key(name: str) -> QKeySequence:
    """The key sequence bound to a named action."""
    return QKeySequence(_BY_NAME[name].keys)


class ShortcutsDialog(QDialog):
    """A read-only table of every shortcut."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.table = QTableWidget(len(SHORTCUTS), 2)
        self.table.setHorizontalHeaderLabels(["Action", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        for row, s in enumerate(SHORTCUTS):
            keys = s.shown or QKeySequence(s.keys).toString(QKeySequence.NativeText)
            self.table.setItem(row, 0, QTableWidgetItem(s.description))
            self.table.setItem(row, 1, QTableWidgetItem(keys))
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(440, 420)
