"""Chat settings and presets, window state across reopening, themes, shortcuts and errors
(fake backend; real widgets)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from lmdesk.backends.fake import FakeBackend
from lmdesk.core.chat.conversation import ConversationSettings
from lmdesk.core.params import LoadOptions
from lmdesk.ui.shortcuts import SHORTCUTS
from tests.chat_support import activate, close_window, last_id, load, open_window, send


def test_settings_are_saved_used_and_presets_apply_elsewhere(qtbot, fake_model):
    win = open_window(qtbot, fake_model)
    try:
        load(qtbot, win, "fake", "fake")
        chat = win.chat
        send(qtbot, win, "first chat")
        first = chat.conversation_id
        qtbot.mouseClick(chat.panel.settings_button, Qt.LeftButton)
        dlg = chat.settings_dialog
        assert dlg.isVisible()
        dlg.system_prompt.clear()
        qtbot.keyClicks(dlg.system_prompt, "You are a pirate.")
        dlg.temperature.setValue(0.2)
        dlg.top_k.setValue(7)
        dlg.seed.setValue(42)
        dlg.max_tokens.setValue(99)
        qtbot.keyClicks(dlg.preset_name, "Pirate")
        qtbot.mouseClick(dlg.save_preset_button, Qt.LeftButton)
        assert [p.name for p in win.store.presets.list()] == ["Pirate"]
        qtbot.mouseClick(dlg.buttons.button(QDialogButtonBox.Ok), Qt.LeftButton)
        saved = win.store.get_settings(first)
        assert (saved.system_prompt, saved.temperature, saved.top_k, saved.seed, saved.max_tokens) == \
            ("You are a pirate.", 0.2, 7, 42, 99)
        send(qtbot, win, "hello again")
        sent = fake_model.calls[-1]
        assert sent[0].role == "system" and sent[0].content == "You are a pirate."
        # a new chat starts from defaults; applying the preset gives it the pirate too
        activate(qtbot, win)  # the dialog had the focus
        qtbot.keyClick(win, Qt.Key_N, Qt.ControlModifier)
        assert chat.conversation_id is None and chat.settings == ConversationSettings()
        qtbot.mouseClick(chat.panel.settings_button, Qt.LeftButton)
        dlg = chat.settings_dialog
        assert dlg.system_prompt.toPlainText() == ""
        dlg.presets.setCurrentIndex(dlg.presets.findText("Pirate"))
        qtbot.mouseClick(dlg.apply_preset_button, Qt.LeftButton)
        qtbot.mouseClick(dlg.buttons.button(QDialogButtonBox.Ok), Qt.LeftButton)
        send(qtbot, win, "second chat")
        assert chat.conversation_id != first
        assert win.store.get_settings(chat.conversation_id) == saved
    finally:
        close_window(win)


def test_reopening_restores_conversation_geometry_and_splitter(qtbot):
    win = open_window(qtbot)
    load(qtbot, win, "fake", "fake")
    send(qtbot, win, "remember me")
    send(qtbot, win, "and me")
    cid = win.chat.conversation_id
    win.resize(930, 640)
    win.chat.splitter.setSizes([300, 600])
    sizes = win.chat.splitter.sizes()
    win.set_theme("dark")
    close_window(win)

    again = open_window(qtbot)
    try:
        qtbot.waitUntil(lambda: again.chat.conversation_id == cid)  # reopened once the window is up
        assert [m.content for m in again.chat.path if m.role == "user"] == ["remember me", "and me"]
        assert "Hello, world!" in again.chat.view.toPlainText()
        assert (again.width(), again.height()) == (930, 640)
        assert again.chat.splitter.sizes() == sizes
        assert again.settings.theme == "dark" and again.chat.view.dark
        assert again.theme_actions["dark"].isChecked()
    finally:
        again.set_theme("light")
        close_window(again)


def test_closing_mid_reply_keeps_it_as_stopped(qtbot):
    win = open_window(qtbot)
    load(qtbot, win, "fake", "fake:slow")
    send(qtbot, win, "a long one", wait=False)
    qtbot.waitUntil(lambda: "word1" in win.chat.view.stream_text, timeout=10_000)
    mid = win.chat.streamer.current.message_id
    store = win.store
    win.close()
    m = store.get_message(mid)
    assert m.status == "stopped" and m.content.startswith("word0 word1")
    win.bridge.shutdown()
    store.close()


def test_switching_away_and_back_while_a_reply_streams(qtbot):
    win = open_window(qtbot)
    try:
        load(qtbot, win, "fake", "fake:slow")
        chat = win.chat
        other = win.store.create_conversation("Other chat")
        win.store.add_message(other, None, "user", "something else entirely")
        send(qtbot, win, "stream while I look away", wait=False)
        streaming = chat.conversation_id
        qtbot.waitUntil(lambda: "word1" in chat.view.stream_text, timeout=10_000)
        chat.sidebar.refresh()
        chat.open_conversation(other)
        assert "something else entirely" in chat.view.toPlainText() and chat.view.stream_id is None
        qtbot.wait(200)
        chat.open_conversation(streaming)
        assert chat.view.stream_id == chat.streamer.current.message_id
        with qtbot.waitSignal(chat.streamer.sig_done, timeout=10_000):
            pass
        reply = win.store.get_message(last_id(win, "assistant"))
        assert reply.status == "complete" and reply.content.count("word") == 40
        assert "word39" in chat.view.toPlainText()
    finally:
        close_window(win)


def test_auto_scroll_follows_until_the_user_scrolls_up(qtbot):
    slow = FakeBackend(pieces=tuple(f"line {i}\n\n" for i in range(40)), delay=0.05, context_length=LoadOptions().n_ctx)  # "fake:slow", scripted
    win = open_window(qtbot, slow)
    try:
        load(qtbot, win, "fake", "fake:slow")
        chat = win.chat
        sb = chat.view.verticalScrollBar()
        send(qtbot, win, "many lines", wait=False)
        qtbot.waitUntil(lambda: sb.maximum() > 0 and "line 12" in chat.view.stream_text, timeout=10_000)
        qtbot.waitUntil(lambda: sb.value() == sb.maximum(), timeout=5_000)
        sb.setValue(0)  # the user scrolls up to read
        assert not chat.view.follow
        qtbot.waitUntil(lambda: "line 25" in chat.view.stream_text, timeout=10_000)
        assert sb.value() == 0
        chat.view.scroll_to_end()
        with qtbot.waitSignal(chat.streamer.sig_done, timeout=10_000):
            pass
        assert sb.value() == sb.maximum()
    finally:
        close_window(win)


def test_theme_menu_shortcuts_dialog_and_errors(qtbot, fake_model):
    win = open_window(qtbot, fake_model)
    try:
        win.theme_actions["dark"].trigger()
        assert QApplication.instance().property("lmdesk_dark") and win.chat.view.dark
        win.theme_actions["light"].trigger()
        assert not win.chat.view.dark
        activate(qtbot, win)
        qtbot.keyClick(win, Qt.Key_F1)
        table = win.shortcuts_dialog.table
        assert win.shortcuts_dialog.isVisible() and table.rowCount() == len(SHORTCUTS)
        listed = {table.item(r, 0).text() for r in range(table.rowCount())}
        assert {"New chat", "Search chats", "Send the message", "Copy the last reply", "Regenerate the last reply"} <= listed
        win.shortcuts_dialog.close()
        # no model yet: the banner explains and the draft stays
        send(qtbot, win, "hello?", wait=False)
        assert win.banner.isVisible() and "No model" in win.banner.label.text()
        assert win.chat.composer.toPlainText() == "hello?"
        win.chat.composer.clear()
        load(qtbot, win, "fake", "fake")
        fake_model.fail_after = 0  # make the scripted model fail
        with qtbot.waitSignal(win.chat.streamer.sig_failed, timeout=10_000):
            send(qtbot, win, "This text must not be lost", wait=False)
        assert win.banner.isVisible() and "failed on purpose" in win.banner.label.text()
        path = win.chat.path
        assert path[0].content == "This text must not be lost"
        assert path[1].status == "error" and "error" in win.chat.view.toPlainText()
    finally:
        close_window(win)


def test_long_conversation_opens_at_the_end_and_shows_earlier_on_demand(qtbot):
    from lmdesk.core.storage.store import Store
    from lmdesk.config import app_paths

    with Store(app_paths().ensure().database) as store:
        cid = store.create_conversation("Long one")
        parent = None
        for k in range(150):
            parent = store.add_message(cid, parent, "user", f"question number {k}")
            parent = store.add_message(cid, parent, "assistant", f"answer number {k}", model="fake")
        store.set_content(parent, "the last answer, cut short")
        store.db._conn.execute("UPDATE messages SET status='interrupted' WHERE id=?", (parent,))  # noqa: SLF001
    win = open_window(qtbot)
    try:
        win.chat.open_conversation(cid)
        view = win.chat.view
        text = view.toPlainText()
        assert "Show 180 earlier messages" in text and "question number 0\n" not in text
        assert "interrupted" in text and "the last answer, cut short" in text
        from tests.chat_support import click_anchor

        click_anchor(qtbot, view, "action:more:0")
        assert "question number 0" in view.toPlainText() and "earlier messages" not in view.toPlainText()
    finally:
        close_window(win)
