"""GUI start-up: QApplication, engine bridge, main window. Imports only Qt and lmdesk — never
torch or transformers, which load only if the user picks the torch backend."""

from __future__ import annotations

import logging
import sys
import time

from PySide6.QtWidgets import QApplication

from lmdesk.config import Settings, app_paths, setup_logging
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


def run_gui(model: str | None = None, backend: str | None = None, debug: bool = False) -> int:
    """Open the main window and run the event loop until it closes; returns the exit code."""
    paths = app_paths().ensure()
    setup_logging(paths, debug)
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("lmdesk")
    app.setApplicationDisplayName("lmdesk")
    window = create_window(model, backend)
    window.show()
    rc = app.exec()
    window.bridge.shutdown()
    window.store.close()
    return rc
