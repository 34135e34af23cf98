"""The Chat pane when the store fails or a slot has a bug: a banner, no lost text, no dead app.

pytest-qt turns an exception raised inside a Qt slot into a test failure, so each test here would
have failed (or lost text) before the pane caught the failure it exercises."""

from __future__ import annotations

import logging
import sys

from PySide6.QtCore import Qt

from lmdesk.core.chat.conversation import Message
from lmdesk.core.storage.store import StoreError
from lmdesk.ui.chat.message_view import MessageView
from tests.chat_support import activate, click_anchor, last_id, send


def _fail(*_a, **_k):
    raise StoreError("database is locked", "Close the other program using it")


def test_store_read_failure_during_send_shows_a_banner_and_keeps_the_message(qtbot, win, monkeypatch):
    chat = win.chat
    monkeypatch.setattr(win.store, "load_tree", _fail)
    qtbot.keyClicks(chat.composer, "please keep me")
    qtbot.keyClick(chat.composer, Qt.Key_Return)
    assert win.banner.isVisible() and "database is locked" in win.banner.label.text()
    assert not chat.generating and chat.panel.send_button.isEnabled()
    monkeypatch.undo()
    path = win.store.load_tree(chat.conversation_id).active_path()
    assert [(m.role, m.content) for m in path] == [("user", "please keep me")]


def test_a_failed_final_write_is_retried_and_the_reply_kept(qtbot, win, monkeypatch):
    chat, store = win.chat, win.store
    real_finish = store.finish_assistant
    failures = []

    def finish_once_failing(*a, **k):
        if not failures:
            failures.append(1)
            _fail()
        return real_finish(*a, **k)

    monkeypatch.setattr(store, "finish_assistant", finish_once_failing)
    send(qtbot, win, "Hello there")
    assert failures and "database is locked" in win.banner.label.text()
    assert "Hello, world!" in chat.view.toPlainText()  # the view keeps what arrived
    mid = last_id(win, "assistant")
    qtbot.waitUntil(lambda: store.get_message(mid).status == "complete", timeout=5000)
    assert store.get_message(mid).content == "Hello, world!"
    assert not chat.streamer._flush.isActive()  # noqa: SLF001 - nothing left to retry


def test_a_conversation_that_cannot_be_read_is_not_half_opened(qtbot, win, monkeypatch):
    chat, store = win.chat, win.store
    send(qtbot, win, "first chat")
    other = store.create_conversation("Other")
    store.add_message(other, None, "user", "elsewhere")
    chat.sidebar.refresh()
    monkeypatch.setattr(store, "load_tree", _fail)
    chat.open_conversation(other)
    assert "database is locked" in win.banner.label.text()
    # Not the other id with the first chat's path: a send would attach to the wrong conversation.
    assert chat.conversation_id is None and chat.path == [] and chat.sidebar.current_id() is None


def test_edit_mode_gives_the_draft_back(qtbot, win):
    chat = win.chat
    send(qtbot, win, "original question")
    user = last_id(win, "user")
    qtbot.keyClicks(chat.composer, "my half-written draft")
    click_anchor(qtbot, chat.view, f"action:edit:{user}")
    assert chat.composer.toPlainText() == "original question"
    activate(qtbot, win)
    chat.composer.setFocus()
    qtbot.keyClick(chat.composer, Qt.Key_Escape)
    assert chat.panel.editing_id is None and chat.composer.toPlainText() == "my half-written draft"
    # after a resend too
    click_anchor(qtbot, chat.view, f"action:edit:{user}")
    chat.composer.setPlainText("edited question")
    with qtbot.waitSignal(chat.streamer.sig_done, timeout=10_000):
        qtbot.keyClick(chat.composer, Qt.Key_Return)
    assert chat.path[-2].content == "edited question"
    assert chat.composer.toPlainText() == "my half-written draft"


def test_an_exception_in_a_slot_becomes_a_banner_and_a_log_record(qtbot, win, caplog):
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        with caplog.at_level(logging.ERROR, logger="lmdesk.ui"):
            win.report_exception(*sys.exc_info())
    assert win.banner.isVisible() and "RuntimeError: boom" in win.banner.label.text()
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)


def _msg(i: int, role: str) -> Message:
    return Message(id=i, conversation_id=1, parent_id=i - 1 or None, role=role, content=f"text {i}")


def test_a_message_missing_from_the_document_renders_the_path_whole(qtbot):
    view = MessageView()
    qtbot.addWidget(view)
    a, b, c, d = _msg(1, "user"), _msg(2, "assistant"), _msg(3, "user"), _msg(4, "user")
    view.show_messages([a, b, c], {})
    view.document().setPlainText("")  # the document lost track of the messages shown
    view.show_messages([a, b, d], {})
    text = view.toPlainText()
    assert "text 1" in text and "text 2" in text and "text 4" in text and "text 3" not in text
