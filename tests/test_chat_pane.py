"""The Chat pane's mechanics, clicked like a user would, against the scripted fake backend."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from tests.chat_support import activate, click_anchor, last_id, load, send

CODE_REPLY = ("Here you go:\n\n", "```python\n", "def add(a, b):\n", "    return a + b\n", "```\n\n",
              "| x | y |\n|---|---|\n| 1 | 2 |\n\n", "See [the docs](https://example.com/docs).")


def test_send_streams_saves_and_lists(qtbot, win):
    send(qtbot, win, "Hello there, model")
    chat = win.chat
    assert chat.composer.toPlainText() == ""
    assert "Hello, world!" in chat.view.toPlainText()
    cid = chat.conversation_id
    info = win.store.get_conversation(cid)
    assert info.title == "Hello there, model"
    path = win.store.load_tree(cid).active_path()
    assert [(m.role, m.status) for m in path] == [("user", "complete"), ("assistant", "complete")]
    assert path[1].content == "Hello, world!" and path[1].stats["generated_tokens"] == 4
    assert path[1].model == "fake"
    assert chat.sidebar.ids() == [cid] and chat.sidebar.current_id() == cid
    assert "tokens" in win.speed_label.text()
    assert "4 tokens" in chat.view.toPlainText()  # the quiet stats line under the reply
    assert chat.meter.used > 0 and chat.meter.total == 4096
    assert chat.panel.send_button.isEnabled() and not chat.panel.stop_button.isEnabled()


def test_markdown_reply_copy_links_and_external_links(qtbot, win, fake_model, monkeypatch):
    fake_model.pieces = CODE_REPLY  # script the reply
    send(qtbot, win, "code and a table please")
    view = win.chat.view
    assert "def add(a, b):" in view.toPlainText() and "x" in view.toPlainText()
    mid = last_id(win, "assistant")
    click_anchor(qtbot, view, f"copy:{mid}:0")
    assert QGuiApplication.clipboard().text() == "def add(a, b):\n    return a + b"
    opened = []
    view.open_url = opened.append
    click_anchor(qtbot, view, "https://example.com/docs")
    assert [u.toString() for u in opened] == ["https://example.com/docs"]
    click_anchor(qtbot, view, f"action:copy:{mid}")
    assert QGuiApplication.clipboard().text() == "".join(CODE_REPLY)
    win.copy_last_action.trigger()
    assert QGuiApplication.clipboard().text() == "".join(CODE_REPLY)


def test_streaming_row_is_saved_and_stop_keeps_the_text(qtbot, win):
    load(qtbot, win, "fake", "fake:slow")  # 40 pieces, 50 ms apart
    chat = win.chat
    for stop in (lambda: qtbot.mouseClick(chat.panel.stop_button, Qt.LeftButton),
                 lambda: (activate(qtbot, win), chat.composer.setFocus(), qtbot.keyClick(chat.composer, Qt.Key_Escape))):
        send(qtbot, win, "Tell me a long story", wait=False)
        assert chat.panel.stop_button.isEnabled() and not chat.panel.send_button.isEnabled()
        qtbot.waitUntil(lambda: "word2" in chat.view.stream_text, timeout=10_000)
        mid = chat.streamer.current.message_id
        assert win.store.get_message(mid).status == "streaming"  # the row exists while it streams
        with qtbot.waitSignal(chat.streamer.sig_done, timeout=10_000):
            stop()
        m = win.store.get_message(mid)
        assert m.status == "stopped" and m.content.startswith("word0 word1 word2") and "word39" not in m.content
        assert "stopped" in chat.view.toPlainText()
        assert "writing…" not in chat.view.toPlainText()
        assert chat.panel.send_button.isEnabled()


def test_regenerate_and_switch_versions(qtbot, win):
    send(qtbot, win, "first question")
    chat = win.chat
    first = last_id(win, "assistant")
    with qtbot.waitSignal(chat.streamer.sig_done, timeout=10_000):
        click_anchor(qtbot, chat.view, f"action:regen:{first}")
    second = last_id(win, "assistant")
    assert second != first
    assert chat.tree.version(second) == (2, 2)
    assert "2/2" in chat.view.toPlainText()
    click_anchor(qtbot, chat.view, f"action:prev:{second}")
    assert last_id(win, "assistant") == first and "1/2" in chat.view.toPlainText()
    click_anchor(qtbot, chat.view, f"action:next:{first}")
    assert last_id(win, "assistant") == second
    with qtbot.waitSignal(chat.streamer.sig_done, timeout=10_000):
        win.regen_action.trigger()  # Ctrl+R regenerates the last reply
    assert chat.tree.version(last_id(win, "assistant")) == (3, 3)
    # the choice is stored: a fresh load of the tree shows the same path
    assert [m.id for m in win.store.load_tree(chat.conversation_id).active_path()] == [m.id for m in chat.path]


def test_edit_and_resend_makes_a_branch(qtbot, win, fake_model):
    send(qtbot, win, "original question")
    chat = win.chat
    old_user, old_reply = last_id(win, "user"), last_id(win, "assistant")
    click_anchor(qtbot, chat.view, f"action:edit:{old_user}")
    assert chat.panel.editing_id == old_user and chat.composer.toPlainText() == "original question"
    chat.composer.clear()
    send(qtbot, win, "edited question")
    new_user = last_id(win, "user")
    assert new_user != old_user and chat.tree.get(new_user).content == "edited question"
    assert chat.tree.version(new_user) == (2, 2) and chat.panel.editing_id is None
    assert len(fake_model.calls[-1]) == 1  # the old turn is not sent
    click_anchor(qtbot, chat.view, f"action:prev:{new_user}")
    assert [m.id for m in chat.path] == [old_user, old_reply]
    # Esc leaves edit mode and gives the composer back
    click_anchor(qtbot, chat.view, f"action:edit:{old_user}")
    activate(qtbot, win)
    chat.composer.setFocus()
    qtbot.keyClick(chat.composer, Qt.Key_Escape)
    assert chat.panel.editing_id is None and chat.composer.toPlainText() == ""


def test_fork_and_delete_message(qtbot, win):
    send(qtbot, win, "one")
    send(qtbot, win, "two")
    chat = win.chat
    original = chat.conversation_id
    first_reply = [m.id for m in chat.path if m.role == "assistant"][0]
    click_anchor(qtbot, chat.view, f"action:fork:{first_reply}")
    assert chat.conversation_id != original
    assert [m.content for m in chat.path] == ["one", "Hello, world!"]
    assert chat.sidebar.current_id() == chat.conversation_id
    assert "(fork)" in win.store.get_conversation(chat.conversation_id).title
    chat.open_conversation(original)
    assert len(chat.path) == 4
    click_anchor(qtbot, chat.view, f"action:delete:{last_id(win, 'user')}")
    assert [m.content for m in chat.path] == ["one", "Hello, world!"]
    assert len(win.store.load_tree(original)) == 2


def test_rename_delete_and_undo(qtbot, win):
    send(qtbot, win, "a conversation to rename")
    chat, bar = win.chat, win.chat.sidebar
    cid = chat.conversation_id
    bar.list.setFocus()
    qtbot.keyClick(bar.list, Qt.Key_F2)
    editor = QGuiApplication.focusObject()
    assert editor is not None and editor is not bar.list
    editor.selectAll()
    qtbot.keyClicks(editor, "Renamed chat")
    qtbot.keyClick(editor, Qt.Key_Return)
    qtbot.waitUntil(lambda: win.store.get_conversation(cid).title == "Renamed chat", timeout=5000)
    assert bar.list.item(0).text() == "Renamed chat"
    qtbot.mouseClick(bar.delete_button, Qt.LeftButton)
    assert bar.ids() == [] and chat.conversation_id is None
    assert bar.undo_bar.isVisible() and "Renamed chat" in bar.undo_bar.label.text()
    assert win.store.get_conversation(cid).deleted_at is not None
    qtbot.mouseClick(bar.undo_bar.undo_button, Qt.LeftButton)
    assert bar.ids() == [cid] and chat.conversation_id == cid
    assert win.store.get_conversation(cid).deleted_at is None
    assert not bar.undo_bar.isVisible()


def test_search_filters_titles_and_message_text(qtbot, win):
    store = win.store
    a = store.create_conversation("Trip to Lisbon")
    store.add_message(a, None, "user", "pack light")
    b = store.create_conversation("Cooking")
    store.add_message(b, None, "user", "a recipe with saffron and rice")
    c = store.create_conversation("Taxes")
    store.add_message(c, None, "user", "deadline in April")
    bar = win.chat.sidebar
    bar.refresh()
    assert set(bar.ids()) == {a, b, c}
    activate(qtbot, win)
    qtbot.keyClick(win, Qt.Key_F, Qt.ControlModifier)
    assert bar.search.hasFocus()
    qtbot.keyClicks(bar.search, "saffron")
    qtbot.waitUntil(lambda: bar.ids() == [b], timeout=5000)
    bar.search.clear()
    qtbot.keyClicks(bar.search, "lisbon")
    qtbot.waitUntil(lambda: bar.ids() == [a], timeout=5000)
    bar.search.clear()
    qtbot.keyClicks(bar.search, "nothing-like-this")
    qtbot.waitUntil(lambda: bar.ids() == [] and bar.empty_note.isVisibleTo(bar), timeout=5000)
    bar.search.clear()
    qtbot.waitUntil(lambda: len(bar.ids()) == 3, timeout=5000)
    assert bar.ids()[0] == c  # most recent first
    bar.list.setCurrentRow(1)
    assert win.chat.conversation_id == b and "saffron" in win.chat.view.toPlainText()


def test_export_and_import_round_trip(qtbot, win, fake_model, tmp_path, monkeypatch):
    fake_model.pieces = CODE_REPLY
    send(qtbot, win, "export me")
    with qtbot.waitSignal(win.chat.streamer.sig_done, timeout=10_000):
        win.regen_action.trigger()  # a tree with two versions
    from PySide6.QtWidgets import QFileDialog

    md, js = tmp_path / "chat.md", tmp_path / "chat.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(md), ""))
    with qtbot.waitSignal(win.files.sig_exported, timeout=10_000):
        win.export_md_action.trigger()
    text = md.read_text(encoding="utf-8")
    assert "# export me" in text and "def add(a, b):" in text
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(js), ""))
    with qtbot.waitSignal(win.files.sig_exported, timeout=10_000):
        win.export_json_action.trigger()
    original = win.chat.conversation_id
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(js), ""))
    with qtbot.waitSignal(win.files.sig_imported, timeout=10_000) as blocker:
        win.import_action.trigger()
    imported = blocker.args[0]
    assert imported != original and win.chat.conversation_id == imported
    assert set(win.chat.sidebar.ids()) == {original, imported}

    def comparable(cid):
        doc = win.store.export_json(cid)
        doc.pop("updated_at")
        return doc

    assert comparable(imported) == comparable(original)
    assert "2/2" in win.chat.view.toPlainText()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with qtbot.waitSignal(win.files.sig_error, timeout=10_000):
        win.import_conversation(str(bad))
    assert win.banner.isVisible() and "Import failed" in win.banner.label.text()


def test_send_stream_and_regenerate_never_render_the_whole_transcript(qtbot, win, fake_model, monkeypatch):
    fake_model.pieces = CODE_REPLY
    for k in range(3):
        send(qtbot, win, f"question {k}")
    view = win.chat.view
    whole = []
    monkeypatch.setattr(view, "setHtml", lambda html: whole.append(html))
    renders = view.renders
    send(qtbot, win, "one more")
    with qtbot.waitSignal(win.chat.streamer.sig_done, timeout=10_000):
        click_anchor(qtbot, view, f"action:regen:{last_id(win, 'assistant')}")
    assert whole == []  # only the new messages and the reply's tail were rendered
    assert view.renders > renders
    incremental = " ".join(view.toPlainText().split())
    monkeypatch.undo()
    view.rerender()
    assert " ".join(view.toPlainText().split()) == incremental
    assert "2/2" in incremental and incremental.count("def add(a, b):") == 4


def test_context_meter_and_draft_show_the_models_exact_count(qtbot, win, fake_model):
    """Counts come from the loaded model's tokenizer through the engine, not the "~" estimate."""
    from lmdesk.core.chat.conversation import chat_messages

    send(qtbot, win, "Hello there, model")
    chat = win.chat
    expected = fake_model.count_tokens(chat_messages(chat.path, chat.settings.system_prompt))
    qtbot.waitUntil(lambda: chat.meter.exact and chat.meter.used == expected, timeout=10_000)
    assert "~" not in chat.meter.label.text() and f"{expected:,} / 4,096" in chat.meter.label.text()
    qtbot.keyClicks(chat.composer, "x" * 40)
    qtbot.waitUntil(lambda: chat.panel.tokens.text().startswith("Draft = "), timeout=10_000)
    left = 4096 - expected - 14
    assert chat.panel.tokens.text() == f"Draft = 14 tokens · {left:,} left in context"  # the fake: 40/4 + 4


def test_a_message_sent_while_the_model_loads_is_answered_once_it_is_ready(qtbot, fake_model):
    """Typing right after launch: the reply waits in the engine's queue behind the load."""
    import threading

    from lmdesk.config import Settings, app_paths
    from lmdesk.core.storage.store import Store
    from lmdesk.engine.bridge import EngineBridge
    from lmdesk.ui.main_window import MainWindow
    from tests.chat_support import close_window

    gate = threading.Event()

    def slow_loader(*_args):
        assert gate.wait(30)
        return fake_model

    paths = app_paths().ensure()
    win = MainWindow(EngineBridge(loader=slow_loader), paths, Settings.load(paths), Store(paths.database))
    qtbot.addWidget(win)
    win.show()
    try:
        win.load_model("fake", "fake")
        assert win.bridge.model is None and win.bridge.loading()
        send(qtbot, win, "typed at once", wait=False)
        assert not win.banner.isVisible() and win.chat.composer.toPlainText() == ""  # saved and queued
        assert win.chat.generating
        with qtbot.waitSignal(win.chat.streamer.sig_done, timeout=10_000):
            gate.set()
        assert [(m.role, m.content) for m in win.chat.path] == [("user", "typed at once"), ("assistant", "Hello, world!")]
    finally:
        close_window(win)
