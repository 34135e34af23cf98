"""The conversation list: new, search, rename in place, delete with an Undo strip."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPushButton, QToolButton,
    QVBoxLayout, QWidget,
)

from lmdesk.core.storage.store import Store, StoreError

log = logging.getLogger("lmdesk.ui")

UNDO_SECONDS = 12
SEARCH_DELAY_MS = 150  # wait for a pause in typing before querying


class UndoBar(QFrame):
    """'Deleted “title” — Undo' for a few seconds after a conversation is deleted."""

    sig_undo = Signal(int)
    """(conversation id) the user clicked Undo."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("undobar")
        self.setStyleSheet("QFrame#undobar { border: 1px solid palette(mid); border-radius: 4px; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.undo_button = QPushButton("Undo")
        layout.addWidget(self.label, 1)
        layout.addWidget(self.undo_button)
        self.conversation_id: int | None = None
        self._timer = QTimer(self, singleShot=True, interval=UNDO_SECONDS * 1000)
        self._timer.timeout.connect(self.hide)
        self.undo_button.clicked.connect(self._undo)
        self.hide()

    def offer(self, conversation_id: int, title: str) -> None:
        """Show the strip for a conversation just deleted."""
        self.conversation_id = conversation_id
        self.label.setText(f"Deleted “{title}”")
        self.show()
        self._timer.start()

    def _undo(self) -> None:
        if self.conversation_id is not None:
            self.sig_undo.emit(self.conversation_id)
        self.conversation_id = None
        self.hide()


class Sidebar(QWidget):
    """Lists conversations, most recently active first, filtered by the search box."""

    sig_open = Signal(int)
    """(conversation id) the user picked a conversation."""
    sig_new = Signal()
    """The user asked for a new chat."""
    sig_deleted = Signal(int)
    """(conversation id) a conversation was deleted (soft: Undo may bring it back)."""
    sig_restored = Signal(int)
    """(conversation id) a deleted conversation came back through Undo."""
    sig_error = Signal(str)
    """A one-line error for the banner."""

    def __init__(self, store: Store, parent=None) -> None:
        super().__init__(parent)
        self.store = store
        self._updating = False
        self.new_button = QPushButton("New chat")
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search chats (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget()
        self.list.setEditTriggers(QListWidget.EditKeyPressed | QListWidget.DoubleClicked)
        self.list.setContextMenuPolicy(Qt.ActionsContextMenu)
        self.list.setTextElideMode(Qt.ElideRight)
        self.rename_action = QAction("Rename", self.list, shortcut=QKeySequence(Qt.Key_F2))
        self.delete_action = QAction("Delete", self.list, shortcut=QKeySequence.Delete)
        for a in (self.rename_action, self.delete_action):
            a.setShortcutContext(Qt.WidgetShortcut)
            self.list.addAction(a)
        self.rename_button = QToolButton(text="Rename")
        self.delete_button = QToolButton(text="Delete")
        self.empty_note = QLabel("No chats match.")
        self.empty_note.setStyleSheet("color: palette(mid);")
        self.empty_note.hide()
        self.undo_bar = UndoBar()
        buttons = QHBoxLayout()
        buttons.addWidget(self.rename_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.addWidget(self.new_button)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty_note)
        layout.addWidget(self.undo_bar)
        layout.addLayout(buttons)

        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(lambda: self.refresh())
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.new_button.clicked.connect(self.sig_new)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemChanged.connect(self._on_item_changed)
        self.rename_action.triggered.connect(self.start_rename)
        self.delete_action.triggered.connect(self.delete_current)
        self.rename_button.clicked.connect(self.start_rename)
        self.delete_button.clicked.connect(self.delete_current)
        self.undo_bar.sig_undo.connect(self.undo_delete)

    # -- listing -----------------------------------------------------------------------------------

    def refresh(self, select_id: int | None = None) -> None:
        """Re-read the list (keeping or setting the selection) without emitting sig_open."""
        keep = self.current_id() if select_id is None else select_id
        try:
            rows = self.store.list_conversations(self.search.text())
        except StoreError as exc:
            self.sig_error.emit(exc.user_text())
            return
        self._updating = True
        try:
            self.list.clear()
            for info in rows:
                item = QListWidgetItem(info.title or "New chat")
                item.setData(Qt.UserRole, info.id)
                item.setFlags(item.flags() | Qt.ItemIsEditable)
                item.setToolTip(info.title)
                self.list.addItem(item)
                if info.id == keep:
                    self.list.setCurrentItem(item)
        finally:
            self._updating = False
        self.empty_note.setVisible(not rows and bool(self.search.text().strip()))

    def ids(self) -> list[int]:
        """Conversation ids in list order."""
        return [self.list.item(i).data(Qt.UserRole) for i in range(self.list.count())]

    def current_id(self) -> int | None:
        """The selected conversation, if any."""
        item = self.list.currentItem()
        return item.data(Qt.UserRole) if item is not None else None

    def select(self, conversation_id: int | None) -> None:
        """Highlight a conversation (None: nothing) without emitting sig_open."""
        self._updating = True
        try:
            self.list.setCurrentItem(None)
            for i in range(self.list.count()):
                if self.list.item(i).data(Qt.UserRole) == conversation_id:
                    self.list.setCurrentRow(i)
                    break
        finally:
            self._updating = False

    def _on_current(self, item: QListWidgetItem | None, _prev) -> None:
        if not self._updating and item is not None:
            self.sig_open.emit(item.data(Qt.UserRole))

    # -- rename / delete ---------------------------------------------------------------------------

    def start_rename(self) -> None:
        """Edit the selected title in place (Enter saves, Esc cancels)."""
        item = self.list.currentItem()
        if item is not None:
            self.list.editItem(item)

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._updating:
            return
        title = item.text().strip()
        if not title:
            self.refresh()  # an empty title is not a rename
            return
        self.rename(item.data(Qt.UserRole), title)

    def rename(self, conversation_id: int, title: str) -> None:
        """Set a conversation's title."""
        try:
            self.store.rename_conversation(conversation_id, title)
        except StoreError as exc:
            self.sig_error.emit(exc.user_text())
        self.refresh()

    def delete_current(self) -> None:
        """Delete the selected conversation, offering Undo."""
        cid = self.current_id()
        if cid is not None:
            self.delete(cid)

    def delete(self, conversation_id: int) -> None:
        """Soft-delete a conversation and show the Undo strip."""
        try:
            title = self.store.get_conversation(conversation_id).title or "New chat"
            self.store.delete_conversation(conversation_id)
        except (StoreError, KeyError) as exc:
            self.sig_error.emit(str(exc))
            return
        self.refresh(select_id=-1)
        self.undo_bar.offer(conversation_id, title)
        self.sig_deleted.emit(conversation_id)

    def undo_delete(self, conversation_id: int) -> None:
        """Bring a deleted conversation back."""
        try:
            self.store.undo_delete_conversation(conversation_id)
        except StoreError as exc:
            self.sig_error.emit(exc.user_text())
            return
        self.refresh(select_id=conversation_id)
        self.sig_restored.emit(conversation_id)
