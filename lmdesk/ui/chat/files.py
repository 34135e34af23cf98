"""Export a conversation (Markdown or JSON) and import JSON, off the GUI thread via bridge.call_in_background."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from lmdesk.core.storage.store import Store
from lmdesk.engine.bridge import EngineBridge

log = logging.getLogger("lmdesk.ui")

FORMATS = {"markdown": ("Markdown (*.md)", ".md"), "json": ("lmdesk conversation (*.json)", ".json")}


def default_file_name(title: str, fmt: str) -> str:
    """A safe file name from a conversation title."""
    stem = "".join(ch if ch.isalnum() or ch in " -_" else "_" for ch in (title or "conversation")).strip()
    return (stem[:60] or "conversation") + FORMATS[fmt][1]


class ConversationFiles(QObject):
    """Background export and import; results come back as signals on the GUI thread."""

    sig_exported = Signal(str)
    """(path) a conversation was written to a file."""
    sig_imported = Signal(int)
    """(conversation id) a file was imported as a new conversation."""
    sig_error = Signal(str)
    """A one-line error for the banner."""

    def __init__(self, bridge: EngineBridge, store: Store, parent=None) -> None:
        super().__init__(parent)
        self.bridge, self.store = bridge, store

    def export(self, conversation_id: int, fmt: str, path: str) -> int:
        """Write the conversation to `path` in `fmt` ("markdown" or "json"); returns the background call's id."""
        store = self.store  # the store is thread-safe; the task touches no widget

        def work() -> str:
            if fmt == "json":
                text = json.dumps(store.export_json(conversation_id), ensure_ascii=False, indent=2)
            else:
                text = store.export_markdown(conversation_id)
            Path(path).write_text(text, encoding="utf-8")
            return path

        return self.bridge.call_in_background(work, self.sig_exported.emit, lambda msg: self.sig_error.emit(f"Export failed: {msg}"))

    def import_file(self, path: str) -> int:
        """Import a JSON export as a new conversation; returns the background call's id."""
        store = self.store

        def work() -> int:
            return store.import_json(Path(path).read_text(encoding="utf-8"))

        return self.bridge.call_in_background(work, self.sig_imported.emit, lambda msg: self.sig_error.emit(f"Import failed: {msg}"))
