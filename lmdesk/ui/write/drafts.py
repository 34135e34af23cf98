"""The Write pane's list of drafts: open, new, rename (in place), delete with undo."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QFrame, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QToolButton,
    QVBoxLayout, QWidget,
)

from lmdesk.core.storage.library import Draft

log = logging.getLogger("lmdesk.ui")

UNTITLED = "Untitled"


def draft_label(title: str, text: str) -> str:
    """What the list shows: the title, else the first line of the text, else 'Untitled'."""
    if title.strip():
        return title.strip()
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= 48 else line[:47] + "…"
    return UNTITLED


class DraftList(QWidget):
    """Lists `store.drafts`; tells the pane which draft to open, and handles rename/delete/undo."""

    sig_open = Signal(int)
    """(draft id) the user chose a draft to open."""
    sig_new = Signal()
    """The user asked for a new, empty draft."""
    sig_about_to_delete = Signal(int)
    """(draft id) a draft is about to be deleted: save it now, so Undo brings back the latest text."""
    sig_deleted = Signal(int)
    """(draft id) a draft was (soft) deleted; the pane opens another one if it was open."""
    sig_restored = Signal(int)
    """(draft id) a deleted draft came back with Undo."""

    def __init__(self, store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.list = QListWidget()
        self.list.setEditTriggers(QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed)
        self.list.setSelectionMode(QAbstractItemView.SingleSelection)
        self.list.setTextElideMode(Qt.ElideRight)  # long first lines end in "…", no sideways scrolling
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.new_button = QPushButton("New")
        self.rename_button = QToolButton(text="Rename", toolTip="Rename the draft (or double-click it)")
        self.delete_button = QToolButton(text="Delete", toolTip="Delete the draft (Undo brings it back)")
        self.undo_bar = QFrame()
        self.undo_bar.setObjectName("undoBar")
        self.undo_bar.setStyleSheet("QFrame#undoBar {background: palette(alternate-base); border-radius: 4px;}")
        self.undo_label = QLabel()
        self.undo_label.setWordWrap(True)
        self.undo_button = QToolButton(text="Undo")
        undo_layout = QHBoxLayout(self.undo_bar)
        undo_layout.setContentsMargins(6, 3, 3, 3)
        undo_layout.addWidget(self.undo_label, 1)
        undo_layout.addWidget(self.undo_button)
        self.undo_bar.hide()
        title = QLabel("<b>Drafts</b>")
        buttons = QHBoxLayout()
        buttons.addWidget(self.new_button)
        buttons.addStretch(1)
        buttons.addWidget(self.rename_button)
        buttons.addWidget(self.delete_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.undo_bar)
        layout.addLayout(buttons)
        self._deleted_id: int | None = None
        self._filling = False
        self.new_button.clicked.connect(self.sig_new)
        self.rename_button.clicked.connect(self.rename_current)
        self.delete_button.clicked.connect(self.delete_current)
        self.undo_button.clicked.connect(self.undo_delete)
        self.list.currentItemChanged.connect(self._on_current_changed)
        self.list.itemChanged.connect(self._on_item_edited)

    # -- contents -----------------------------------------------------------------------------------
    def refresh(self, current_id: int | None) -> None:
        """Reload the list from the store and select `current_id` (without emitting sig_open)."""
        self._filling = True
        try:
            self.list.clear()
            for d in self.store.drafts.list():
                self.list.addItem(self._item(d))
            self.select(current_id)
        finally:
            self._filling = False
        self._update_buttons()

    def select(self, draft_id: int | None) -> None:
        """Highlight a draft without emitting sig_open."""
        filling, self._filling = self._filling, True
        try:
            item = self._find(draft_id)
            self.list.setCurrentItem(item)
            if item is None:
                self.list.clearSelection()
        finally:
            self._filling = filling
        self._update_buttons()

    def update_label(self, draft_id: int, title: str, text: str) -> None:
        """Refresh one item's text after its draft was saved (no reordering while typing)."""
        item = self._find(draft_id)
        if item is not None and not self.list.isPersistentEditorOpen(item):
            self._filling = True
            item.setText(draft_label(title, text))
            self._filling = False

    def current_id(self) -> int | None:
        """The highlighted draft's id."""
        item = self.list.currentItem()
        return item.data(Qt.UserRole) if item is not None else None

    def ids(self) -> list[int]:
        """Draft ids in list order."""
        return [self.list.item(i).data(Qt.UserRole) for i in range(self.list.count())]

    # -- rename / delete / undo ---------------------------------------------------------------------
    def rename_current(self) -> None:
        """Start editing the highlighted draft's title in place."""
        item = self.list.currentItem()
        if item is not None:
            self.list.editItem(item)

    def delete_current(self) -> None:
        """Soft-delete the highlighted draft and offer Undo."""
        draft_id = self.current_id()
        if draft_id is None:
            return
        self.sig_about_to_delete.emit(draft_id)
        label = self.list.currentItem().text()
        self.store.drafts.delete(draft_id)
        self._deleted_id = draft_id
        self.undo_label.setText(f"Deleted “{label}”.")
        self.undo_bar.show()
        self.sig_deleted.emit(draft_id)

    def undo_delete(self) -> None:
        """Bring the last deleted draft back."""
        if self._deleted_id is None:
            return
        draft_id, self._deleted_id = self._deleted_id, None
        self.store.drafts.undo_delete(draft_id)
        self.undo_bar.hide()
        self.sig_restored.emit(draft_id)

    # -- internals ----------------------------------------------------------------------------------
    def _item(self, draft: Draft) -> QListWidgetItem:
        item = QListWidgetItem(draft_label(draft.title, draft.text))
        item.setData(Qt.UserRole, draft.id)
        item.setFlags(item.flags() | Qt.ItemIsEditable)
        item.setToolTip("Double-click to rename")
        return item

    def _find(self, draft_id: int | None) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.UserRole) == draft_id:
                return self.list.item(i)
        return None

    def _on_current_changed(self, item: QListWidgetItem | None, _previous) -> None:
        self._update_buttons()
        if not self._filling and item is not None:
            self.sig_open.emit(item.data(Qt.UserRole))

    def _on_item_edited(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        draft_id = item.data(Qt.UserRole)
        title = item.text().strip()
        self.store.drafts.update(draft_id, title=title)  # "" falls back to the first line
        draft = self.store.drafts.get(draft_id)
        self._filling = True
        item.setText(draft_label(draft.title, draft.text))
        self._filling = False

    def _update_buttons(self) -> None:
        has = self.list.currentItem() is not None
        self.rename_button.setEnabled(has)
        self.delete_button.setEnabled(has)
