"""Helpers for the chat GUI tests: open a window like create_window does, and click links in the
transcript where they are drawn (a real mouse click on the view's viewport)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QTextCursor

from lmdesk.config import Settings, app_paths
from lmdesk.core.storage.store import Store
from lmdesk.backends import load_backend
from lmdesk.backends.fake import FakeBackend
from lmdesk.engine.bridge import EngineBridge
from lmdesk.ui.main_window import MainWindow


def open_window(qtbot, fake: FakeBackend | None = None) -> MainWindow:
    """A main window on the test's LMDESK_HOME (a fresh bridge and store each time); loading the
    fake backend's "fake" or "fake:slow" gives `fake`, the scripted model the test holds, when one
    is passed (once: a second load of it gets a new model from the registry)."""
    paths = app_paths().ensure()
    given = [fake] if fake is not None else []

    def loader(name, path, *rest):
        if given and name == "fake" and path in ("fake", "fake:slow"):
            return given.pop()
        return load_backend(name, path, *rest)

    bridge = EngineBridge(loader=loader)
    win = MainWindow(bridge, paths, Settings.load(paths), Store(paths.database))
    qtbot.addWidget(win)
    win.show()
    return win


def close_window(win: MainWindow) -> None:
    """Close like a user would, then stop the engine and the store."""
    win.close()
    win.bridge.shutdown()
    win.store.close()


def load(qtbot, win: MainWindow, backend: str, path: str) -> None:
    """Load a model and wait for it."""
    with qtbot.waitSignal(win.bridge.sig_model_changed, timeout=60_000):
        win.load_model(backend, path)


def send(qtbot, win: MainWindow, text: str, wait: bool = True) -> None:
    """Type a message and press Enter; with `wait`, until the reply has ended."""
    qtbot.keyClicks(win.chat.composer, text)
    if wait:
        with qtbot.waitSignal(win.chat.streamer.sig_done, timeout=180_000):
            qtbot.keyClick(win.chat.composer, Qt.Key_Return)
    else:
        qtbot.keyClick(win.chat.composer, Qt.Key_Return)


def anchor_hrefs(view) -> list[str]:
    """Every link target in the transcript, in document order."""
    out = []
    block = view.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            href = frag.charFormat().anchorHref()
            if href:
                out.append(href)
            it += 1
        block = block.next()
    return out


def _anchor_position(view, href: str) -> int:
    block = view.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            if frag.charFormat().anchorHref() == href:
                return frag.position() + max(0, frag.length() // 2)
            it += 1
        block = block.next()
    raise AssertionError(f"no link {href!r} in the transcript; links: {anchor_hrefs(view)}")


def click_anchor(qtbot, view, href: str) -> None:
    """Scroll a link into view and click it with the mouse."""
    cursor = QTextCursor(view.document())
    cursor.setPosition(_anchor_position(view, href))
    view.setTextCursor(cursor)
    view.ensureCursorVisible()
    rect = view.cursorRect(cursor)
    point = QPoint(rect.center().x(), rect.center().y())
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=point)


def last_id(win: MainWindow, role: str) -> int:
    """Id of the last message with `role` on the active path."""
    return [m.id for m in win.chat.path if m.role == role][-1]


def activate(qtbot, win: MainWindow) -> None:
    """Make the window active: window shortcuts (Ctrl+N, F1, …) only reach the active window."""
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
