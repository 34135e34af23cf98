"""GUI start-up: QApplication, engine bridge, main window. Imports only Qt and lmdesk — never
torch or transformers, which load only if the user picks the torch backend."""

from __future__ import annotations

import logging
import sys
import time

from PySide6.QtCore import QLockFile
from PySide6.QtWidgets import QApplication, QMessageBox

from lmdesk.config import Paths, Settings, app_paths, setup_logging
from lmdesk.core.errors import LmdeskError
from lmdesk.core.models import default_model, find_model
from lmdesk.core.store import Store, StoreError
from lmdesk.engine.bridge import EngineBridge
from lmdesk.ui.main_window import MainWindow

log = logging.getLogger("lmdesk.ui")

PURGE_AFTER_S = 7 * 86400  # deleted conversations are kept this long before they go for good


def create_window(model: str | None = None, backend: str | None = None) -> MainWindow:
    """Build the window and start loading the model (`model` overrides the default)."""
    paths = app_paths().ensure()
    settings = Settings.load(paths)
    bridge = EngineBridge()
    store = Store(paths.database)  # marks replies a crash left `streaming` as `interrupted`
    try:
        store.purge_deleted(older_than=time.time() - PURGE_AFTER_S)  # Undo had its chance
    except StoreError as exc:
        log.warning("could not purge deleted conversations: %s", exc)
    window = MainWindow(bridge, paths, settings, store)
    if model:
        # A name (not a path) is looked up among discovered models; the CLI checked it exists.
        info = find_model(model, paths, settings)
        window.start(backend or info.backend, info.path)
    else:
        start_backend, start_path = default_model(settings)
        window.start(start_backend, str(start_path))
    return window


def single_instance_lock(paths: Paths) -> QLockFile | None:
    """Hold a lock in the data folder, or None if another lmdesk holds it. Two instances on one
    history file would mark each other's streaming replies as interrupted."""
    lock = QLockFile(str(paths.data / "lmdesk.lock"))
    lock.setStaleLockTime(0)  # a crashed instance's lock is detected by its dead PID, not by age
    return lock if lock.tryLock(100) else None


def run_gui(model: str | None = None, backend: str | None = None, debug: bool = False) -> int:
    """Open the main window and run the event loop until it closes; returns the exit code."""
    paths = app_paths().ensure()
    setup_logging(paths, debug)
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("lmdesk")
    app.setApplicationDisplayName("lmdesk")
    lock = single_instance_lock(paths)
    if lock is None:
        QMessageBox.information(None, "lmdesk", "lmdesk is already running: switch to its window.")
        return 1
    try:
        window = create_window(model, backend)
    except LmdeskError as exc:  # e.g. an unreadable history database: say so, change nothing
        log.error("cannot start: %s", exc.user_text())
        QMessageBox.critical(None, "lmdesk cannot start", exc.user_text())
        return 3
    window.show()
    sys.excepthook = window.report_exception  # not in MainWindow: tests keep pytest-qt's hook
    try:
        rc = app.exec()
    finally:
        sys.excepthook = sys.__excepthook__
    window.bridge.shutdown()
    window.store.close()
    lock.unlock()
    return rc
