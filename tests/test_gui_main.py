"""The main window end to end on the real embedded model: load, send, stream, stop, regenerate;
bad models become banners while the loaded model keeps working. (Mechanics against the fake
backend live in test_chat_pane.py and test_chat_session.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from lmdesk.core.chat.conversation import ConversationSettings
from tests import model_files
from tests.chat_support import click_anchor, close_window, last_id, open_window, send


@pytest.fixture
def window(qtbot):
    win = open_window(qtbot)
    yield win
    close_window(win)


def _start(qtbot, win, backend: str, path: str) -> None:
    with qtbot.waitSignal(win.bridge.sig_model_changed, timeout=180_000):
        win.start(backend, path)
    qtbot.waitUntil(lambda: win.model_bar.combo.count() > 0, timeout=30_000)


def test_real_model_send_stream_stop_regenerate(qtbot, window, embedded_model_path):
    _start(qtbot, window, "llama", embedded_model_path)
    chat = window.chat
    assert "SmolLM2" in window.model_label.text() and "llama" in window.model_label.text()
    assert any(embedded_model_path == window.model_bar.combo.itemData(i)[1]
               for i in range(window.model_bar.combo.count()))
    # Greedy throughout, so the conversation — and how long each reply runs — is reproducible.
    chat.apply_settings(ConversationSettings(max_tokens=40, temperature=0.0))

    # send + stream
    with qtbot.assertNotEmitted(chat.streamer.sig_failed):
        with qtbot.waitSignal(chat.streamer.sig_done, timeout=180_000):
            send(qtbot, window, "Say hello.", wait=False)
            assert chat.panel.stop_button.isEnabled()  # generating: Stop is live at once
    reply = window.store.get_message(last_id(window, "assistant"))
    assert reply.status == "complete" and reply.content.strip() and "SmolLM2" in (reply.model or "")
    assert reply.stats["generated_tokens"] > 0 and reply.stats["prompt_tokens"] > 0
    assert reply.content.strip()[:20] in chat.view.toPlainText()
    assert "tok/s" in chat.view.toPlainText() and "tokens" in window.speed_label.text()
    assert chat.composer.toPlainText() == "" and chat.panel.send_button.isEnabled()

    # stop mid-stream: the text so far is kept, marked stopped
    # Greedy, this prompt runs to the token limit (a short reply would leave nothing to stop).
    chat.apply_settings(ConversationSettings(max_tokens=600, temperature=0.0, repeat_penalty=1.0))
    send(qtbot, window, "Write a long story about a lighthouse keeper who finds a message in a bottle.", wait=False)
    qtbot.waitUntil(lambda: len(chat.view.stream_text) > 30, timeout=180_000)
    with qtbot.waitSignal(chat.streamer.sig_done, timeout=120_000) as blocker:
        qtbot.mouseClick(chat.panel.stop_button, Qt.LeftButton)
    assert blocker.args[1].stop_reason == "cancelled"
    stopped = window.store.get_message(last_id(window, "assistant"))
    assert stopped.status == "stopped" and len(stopped.content) >= 30
    assert "stopped" in chat.view.toPlainText()

    # regenerate: a second version of that reply
    chat.apply_settings(ConversationSettings(max_tokens=30, temperature=0.0))
    with qtbot.waitSignal(chat.streamer.sig_done, timeout=180_000):
        click_anchor(qtbot, chat.view, f"action:regen:{stopped.id}")
    new = window.store.get_message(last_id(window, "assistant"))
    assert new.id != stopped.id and new.parent_id == stopped.parent_id and new.status == "complete"
    assert chat.tree.version(new.id) == (2, 2) and "2/2" in chat.view.toPlainText()
    # the model was sent the conversation so far, without the replaced reply
    assert [m.role for m in chat.path] == ["user", "assistant", "user", "assistant"]


def test_bad_model_shows_banner_and_previous_model_keeps_working(qtbot, window, embedded_model_path, tmp_path):
    _start(qtbot, window, "llama", embedded_model_path)
    bad = model_files.make_random_bytes(tmp_path)
    window.model_bar.sig_load_requested.emit("llama", str(bad))
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=30_000)
    assert window.banner.isVisible() and window.banner.kind == "error"
    assert Path(bad).name in window.banner.label.text()
    assert "still using" in window.banner.label.text()
    assert window.model_bar.load_button.isEnabled() and not window.model_bar.progress.isVisible()
    window.chat.apply_settings(ConversationSettings(max_tokens=16))
    with qtbot.assertNotEmitted(window.chat.streamer.sig_failed):
        send(qtbot, window, "Still there?")
    assert window.chat.path[-1].role == "assistant" and window.chat.path[-1].status == "complete"


def test_broken_start_model_falls_back_to_the_embedded_one(qtbot, window, embedded_model_path, tmp_path):
    broken = model_files.make_truncated_gguf(tmp_path)
    with qtbot.waitSignal(window.bridge.sig_model_changed, timeout=180_000):
        window.start("llama", str(broken))
    assert window.bridge.model.path == embedded_model_path
    assert "built-in model" in window.banner.label.text()
