"""Start-up: the window paints before anything heavy is imported or loaded, and the keyboard goes
to the open tab's text box, so typing right after launch lands in the composer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.chat_support import close_window, open_window

# Modules the first paint must not wait for: numeric and model-file libraries, machine learning
# frameworks, the markdown renderer and the highlighter (needed only once there is text to render).
HEAVY = ("numpy", "gguf", "llama_cpp", "torch", "transformers", "markdown_it", "pygments")

_FIRST_PAINT_CHILD = """
import json, os, sys
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication

class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Paint and obj.isWidgetType() and obj.inherits("QMainWindow"):
            loaded = {m: m in sys.modules for m in %r + ("lmdesk.ui.main_window",)}
            print(json.dumps(loaded), flush=True)
            os._exit(0)
        return False

app = QApplication([])
first_paint = FirstPaint()
app.installEventFilter(first_paint)
from lmdesk.cli import main
main([])  # the `lmdesk` command: the GUI on the default model
""" % (HEAVY,)


def test_first_paint_imports_nothing_heavy(tmp_path):
    """`lmdesk` (the GUI on the embedded model) paints its window before numpy, gguf, llama.cpp,
    torch, transformers, markdown-it or Pygments are imported: they cost more than the window."""
    env = {**os.environ, "LMDESK_HOME": str(tmp_path), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("LMDESK_DEFAULT_MODEL", None)
    out = subprocess.run([sys.executable, "-c", _FIRST_PAINT_CHILD], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip(), f"the window never painted: {out.stderr}"
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen.pop("lmdesk.ui.main_window")
    assert {m for m, loaded in seen.items() if loaded} == set()


def test_keyboard_goes_to_the_open_tabs_text_box(qtbot):
    win = open_window(qtbot)
    try:
        qtbot.waitExposed(win)
        win.activateWindow()
        qtbot.waitUntil(lambda: QApplication.focusWidget() is win.chat.composer)
        qtbot.keyClicks(QApplication.focusWidget(), "typed at once")
        assert win.chat.composer.toPlainText() == "typed at once"

        win.tabs.setCurrentWidget(win.translate)
        assert QApplication.focusWidget() is win.translate.source
        win.tabs.setCurrentWidget(win.write)
        assert QApplication.focusWidget() is win.write.editor
        win.tabs.setCurrentWidget(win.chat)
        assert QApplication.focusWidget() is win.chat.composer

        win.chat.sidebar.search.setFocus()  # elsewhere, then File → New chat
        win.tabs.setCurrentWidget(win.write)
        win.new_chat_action.trigger()
        assert win.tabs.currentWidget() is win.chat
        assert QApplication.focusWidget() is win.chat.composer
    finally:
        win.chat.composer.clear()
        close_window(win)


def test_keyboard_goes_to_the_tab_that_was_open_last_time(qtbot):
    win = open_window(qtbot)
    win.tabs.setCurrentWidget(win.translate)
    close_window(win)
    again = open_window(qtbot)
    try:
        assert again.tabs.currentWidget() is again.translate
        qtbot.waitExposed(again)
        again.activateWindow()
        qtbot.waitUntil(lambda: QApplication.focusWidget() is again.translate.source)
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key_A)
        assert again.translate.source.toPlainText() == "a"
    finally:
        again.translate.source.clear()
        close_window(again)
