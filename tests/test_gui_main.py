"""The first main window, clicked like a user would: real widgets (offscreen), the real embedded
model end to end, the fake backend only where a test needs a slow, scripted reply."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from lmdesk.config import Settings, app_paths
from lmdesk.core.store import Store
from lmdesk.engine.bridge import EngineBridge
from lmdesk.ui.main_window import MainWindow
from tests import model_files


@pytest.fixture
def window(qtbot):
    paths = app_paths().ensure()
    bridge = EngineBridge()
    win = MainWindow(bridge, paths, Settings.load(paths), Store(paths.database))
    qtbot.addWidget(win)
    win.show()
    yield win
    bridge.shutdown()


def _start(qtbot, win, backend: str, path: str) -> None:
    with qtbot.waitSignal(win.bridge.sig_model_loaded, timeout=60_000):
        win.start(backend, path)
    qtbot.waitUntil(lambda: win.model_bar.combo.count() > 0, timeout=30_000)


def _send(qtbot, win, text: str) -> None:
    qtbot.keyClicks(win.chat.composer, text)
    qtbot.keyClick(win.chat.composer, Qt.Key_Return)


def test_chat_streams_a_reply_from_the_embedded_model(qtbot, window, embedded_model_path):
    _start(qtbot, window, "llama", embedded_model_path)
    assert "SmolLM2" in window.model_label.text() and "llama" in window.model_label.text()
    assert any(embedded_model_path == window.model_bar.combo.itemData(i)[1]
               for i in range(window.model_bar.combo.count()))
    with qtbot.assertNotEmitted(window.bridge.sig_failed):
        with qtbot.waitSignal(window.bridge.sig_finished, timeout=60_000):
            _send(qtbot, window, "Say hello.")
            assert window.chat.stop_button.isEnabled()  # generating: Stop is live at once
    assert window.chat.composer.toPlainText() == ""
    assert [m.role for m in window.chat.history] == ["user", "assistant"]
    assert window.chat.history[1].content.strip()
    assert window.chat.history[1].content.strip()[:20] in window.chat.transcript.toPlainText()
    assert "tokens" in window.speed_label.text()
    assert not window.chat.stop_button.isEnabled() and window.chat.send_button.isEnabled()


def test_stop_button_and_escape_stop_a_streaming_reply(qtbot, window):
    _start(qtbot, window, "fake", "fake:slow")  # 40 pieces, 50 ms apart
    for stop in (lambda: qtbot.mouseClick(window.chat.stop_button, Qt.LeftButton),
                 lambda: qtbot.keyClick(window.chat.composer, Qt.Key_Escape)):
        _send(qtbot, window, "Tell me a long story")
        qtbot.waitUntil(lambda: "word2" in window.chat.transcript.toPlainText(), timeout=10_000)
        with qtbot.waitSignal(window.bridge.sig_finished, timeout=10_000) as blocker:
            stop()
        assert blocker.args[1] == "cancelled"
        assert "stopped" in window.chat.transcript.toPlainText()
        assert "word39" not in window.chat.transcript.toPlainText()
        assert window.chat.history[-1].role == "assistant"  # the partial reply is kept
        window.chat.clear()


def test_bad_model_shows_banner_and_previous_model_keeps_working(qtbot, window, embedded_model_path, tmp_path):
    _start(qtbot, window, "llama", embedded_model_path)
    bad = model_files.make_random_bytes(tmp_path)
    with qtbot.waitSignal(window.bridge.sig_failed, timeout=30_000):
        window.model_bar.sig_load_requested.emit("llama", str(bad))
    assert window.banner.isVisible() and window.banner.kind == "error"
    assert Path(bad).name in window.banner.label.text()
    assert "still using" in window.banner.label.text()
    assert window.model_bar.load_button.isEnabled() and not window.model_bar.progress.isVisible()
    with qtbot.assertNotEmitted(window.bridge.sig_failed):
        with qtbot.waitSignal(window.bridge.sig_finished, timeout=60_000):
            _send(qtbot, window, "Still there?")
    assert window.chat.history[-1].role == "assistant"


def test_broken_start_model_falls_back_to_the_embedded_one(qtbot, window, embedded_model_path, tmp_path):
    broken = model_files.make_truncated_gguf(tmp_path)
    with qtbot.waitSignal(window.bridge.sig_model_loaded, timeout=60_000):
        window.start("llama", str(broken))
    assert window.bridge.model.path == embedded_model_path
    assert "built-in model" in window.banner.label.text()


def test_failed_generation_gives_the_text_back(qtbot, window):
    _start(qtbot, window, "fake", "fake")
    window.bridge.worker._backend.fail_after = 0  # noqa: SLF001 - make the scripted model fail
    with qtbot.waitSignal(window.bridge.sig_failed, timeout=10_000):
        _send(qtbot, window, "This text must not be lost")
    assert window.chat.composer.toPlainText() == "This text must not be lost"
    assert window.chat.history == []
    assert window.banner.isVisible()


def test_send_without_model_explains(qtbot, window):
    _send(qtbot, window, "hello?")
    assert window.banner.isVisible() and "No model" in window.banner.label.text()
    assert window.chat.composer.toPlainText() == "hello?"
