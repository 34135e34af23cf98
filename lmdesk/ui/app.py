"""GUI start-up: QApplication, engine bridge, main window. Imports only Qt and lmdesk — never
torch or transformers, which load only if the user picks the torch backend."""

from __future__ import annotations

import logging
import sys
import time

from PySide6.QtCore import QLockFile
from PySide6.QtWidgets import QApplication, QMessageBox

from lmdesk.config import Paths, Settings, app_paths
from lmdesk.core.errors import LmdeskError
from lmdesk.core.storage.database import DamagedStoreError
from lmdesk.core.storage.store import Store, StoreError
from lmdesk.engine.bridge import EngineBridge
from lmdesk.ui.main_window import MainWindow
from lmdesk.ui.quit_signals import QuitOnSignals

log = logging.getLogger("lmdesk.ui")

PURGE_AFTER_S = 7 * 86400  # deleted conversations are kept this long before they go for good


def build_window(paths: Paths) -> MainWindow:
    """The main window on the history and settings in `paths`, with no model loading yet."""
    settings = Settings.load(paths)
    # The store first: a history that cannot be opened must not leave an engine thread behind.
    store = Store(paths.database)  # marks replies a crash left `streaming` as `interrupted`
    bridge = EngineBridge(cache_dir=paths.cache)  # where the torch backend keeps converted models
    try:
        store.purge_deleted(older_than=time.time() - PURGE_AFTER_S)  # Undo had its chance
    except StoreError as exc:
        log.warning("could not purge deleted conversations: %s", exc)
    return MainWindow(bridge, paths, settings, store)


def start_model(window: MainWindow, model: str | None = None, backend: str | None = None) -> None:
    """Find the start-up model off the GUI thread (a name means scanning the model folders), then
    begin loading it and listing the others; `model` overrides the default."""

    def choose() -> tuple[str, str]:
        from lmdesk.core.modelfiles.discovery import default_model, find_model

        if model:
            info = find_model(model, window.paths, window.settings)
            return backend or info.backend, info.path
        start_backend, start_path = default_model(window.settings)
        return start_backend, str(start_path)

    def cannot_start(message: str) -> None:  # e.g. --model names nothing: say so, list the rest
        window.banner.show_message(message)
        window.refresh_models()

    window.bridge.call_in_background(choose, on_done=lambda chosen: window.start(*chosen), on_error=cannot_start)


def create_window(model: str | None = None, backend: str | None = None, paths: Paths | None = None) -> MainWindow:
    """Build the window and start loading the model at once (`model` overrides the default)."""
    window = build_window(paths or app_paths().ensure())
    start_model(window, model, backend)
    return window


def single_instance_lock(paths: Paths) -> QLockFile | None:
    """Hold a lock in the data folder, or None if another lmdesk holds it. Two instances on one
    history file would mark each other's streaming replies as interrupted. Raises LmdeskError when
    the lock file cannot be created at all (e.g. the data folder is not writable)."""
    lock = QLockFile(str(paths.data / "lmdesk.lock"))
    lock.setStaleLockTime(0)  # a crashed instance's lock is detected by its dead PID, not by age
    if lock.tryLock(100):
        return lock
    if lock.error() == QLockFile.LockError.LockFailedError:
        return None
    raise LmdeskError(f"lmdesk cannot write to its data folder {paths.data} ({_write_problem(paths.data)})",
                      "Make the folder writable, or set LMDESK_HOME to a folder that is")


def _write_problem(folder) -> str:
    """Why a file cannot be created in `folder`, in the operating system's words."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return "the lock file could not be created"


def show_start_error(text: str) -> None:
    """The start-up error dialog, for failures before any window exists (e.g. lmdesk's folders
    cannot be created); creates the QApplication if there is none yet."""
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("lmdesk")
    log.error("cannot start: %s", text)
    QMessageBox.critical(None, "lmdesk cannot start", text)


def recover_history(paths: Paths, damaged: DamagedStoreError) -> MainWindow | None:
    """Ask whether to rebuild a damaged history from what can still be read (Recover / Quit); on
    Recover, build it and return the window on it, which says how much was recovered. None on
    Quit or when recovery fails (said in a dialog). Runs before any window exists: recovering a
    normal-size history takes about as long as reading it once."""
    from lmdesk.core.storage.recovery import recover_damaged

    log.error("cannot start: %s", damaged.user_text())
    box = QMessageBox(QMessageBox.Icon.Critical, "lmdesk: the history is damaged",
                      f"{damaged.message}.\n\nRecover what can still be read into a new history? "
                      "The damaged copy stays as it is.")
    recover = box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Quit", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(recover)
    box.exec()
    if box.clickedButton() != recover:
        return None
    try:
        report = recover_damaged(damaged.path, damaged.copy)
        window = build_window(paths)
    except LmdeskError as exc:
        show_start_error(exc.user_text())
        return None
    window.banner.show_message(report.user_text(), kind="info")
    return window


def run_gui(paths: Paths, model: str | None = None, backend: str | None = None) -> int:
    """Open the main window and run the event loop until it closes; returns the exit code: that of
    the event loop (0 after Quit), or 128 + the signal's number after SIGTERM, SIGHUP or SIGINT,
    which close the window the same way as Quit (see lmdesk.ui.quit_signals).

    `paths` must exist (`Paths.ensure()`) and logging be set up: the `lmdesk` command does both.
    The window is shown first; the model is found and loaded once it has been painted."""
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("lmdesk")
    app.setApplicationDisplayName("lmdesk")
    try:
        lock = single_instance_lock(paths)
    except LmdeskError as exc:
        show_start_error(exc.user_text())
        return 3
    if lock is None:
        QMessageBox.information(None, "lmdesk", "lmdesk is already running: switch to its window.")
        return 1
    try:
        window = build_window(paths)
    except DamagedStoreError as exc:  # nothing was written to it; a copy is set aside
        window = recover_history(paths, exc)
        if window is None:
            return 3
    except LmdeskError as exc:  # e.g. an unreadable history database: say so, change nothing
        show_start_error(exc.user_text())
        return 3
    window.show()
    window.after_first_paint(lambda: start_model(window, model, backend))
    sys.excepthook = window.report_exception  # not in MainWindow: tests keep pytest-qt's hook

    def quit_on_signal(signum: int) -> None:  # SIGTERM, SIGHUP, Ctrl+C: the same path as Quit
        window.close()
        app.exit(128 + signum)  # also ends a modal dialog's event loop, if one is open

    signals = QuitOnSignals(quit_on_signal)  # here, not in MainWindow: tests' windows keep the defaults
    signals.install()
    try:
        try:
            rc = app.exec()
        finally:
            sys.excepthook = sys.__excepthook__
        window.bridge.shutdown()
        window.store.close()
        lock.unlock()
    finally:
        signals.uninstall()
    return 128 + signals.received if signals.received is not None else rc
