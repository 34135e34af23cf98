"""The Write pane, clicked like a user would, against a fake model that rewrites by rule."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from lmdesk.core.messages import ChatMessage
from lmdesk.core.storage.store import Store
from lmdesk.core.write.actions import ACTIONS, WriteAction
from lmdesk.core.text.word_diff import apply
from lmdesk.ui.write_pane import WritePane
from tests.pane_fakes import EchoBackend, make_bridge

DOC = "# Trip\n\nWe went to the beach.\n\nThe quick brown fox saw a lazy dog. It was quick.\n\nThe end."
PARA = "The quick brown fox saw a lazy dog. It was quick."


def rewrite(text: str) -> str:
    """The fake model's 'rewrite': three word changes, wrapped in chatter the pane must remove."""
    new = text.replace("quick brown", "fast brown").replace("lazy dog", "sleepy cat").replace("was quick", "was fast")
    return "Sure! Here is the rewritten text:\n" + new


@pytest.fixture
def backend():
    return EchoBackend(reply=rewrite)


@pytest.fixture
def pane(qtbot, backend, store):
    bridge = make_bridge(qtbot, backend)
    p = WritePane(bridge, store)
    qtbot.addWidget(p)
    p.resize(980, 640)
    p.show()
    yield p
    bridge.shutdown()


def select(pane: WritePane, start: int, end: int) -> None:
    cursor = pane.editor.textCursor()
    cursor.setPosition(start)
    cursor.setPosition(end, QTextCursor.KeepAnchor)
    pane.editor.setTextCursor(cursor)


def start_action(qtbot, pane: WritePane, action: WriteAction, expect: str = "review") -> None:
    with qtbot.waitSignal(pane.sig_state, timeout=10_000, check_params_cb=lambda s: s == expect):
        qtbot.mouseClick(pane.action_buttons[action], Qt.LeftButton)


@pytest.mark.parametrize("action", list(WriteAction))
def test_each_action_works_on_the_selection(qtbot, pane, backend, action):
    pane.editor.setPlainText(DOC)
    start = DOC.index(PARA)
    if action is WriteAction.CONTINUE:
        backend.reply = lambda _text: "Then it rained."
        select(pane, start + len(PARA), start + len(PARA))  # the cursor at the end of the paragraph
    else:
        select(pane, start, start + len(PARA))
    if action is WriteAction.CUSTOM:
        qtbot.keyClicks(pane.instruction, "Use animal names a child knows")
    start_action(qtbot, pane, action)
    assert pane.editor.isReadOnly()  # locked while the result waits for review
    prompt = backend.calls[-1][-1].content
    if action is WriteAction.CONTINUE:
        assert backend.texts[-1] == DOC[: start + len(PARA)]  # the model sees the text before the cursor
        assert "The end." in prompt  # …and what follows the gap
        expected = DOC[: start + len(PARA)] + " Then it rained." + DOC[start + len(PARA):]
    else:
        assert backend.texts[-1] == PARA  # only the selection goes to the model
        expected = DOC.replace(PARA, rewrite(PARA).split("\n", 1)[1])
    wanted = "Use animal names a child knows" if action is WriteAction.CUSTOM else ACTIONS[action].instruction
    assert wanted in prompt
    assert "Sure!" not in pane.diff.toPlainText()  # chatter cleaned before the diff
    qtbot.mouseClick(pane.accept_button, Qt.LeftButton)
    assert pane.editor.toPlainText() == expected
    assert pane.state == "idle" and not pane.editor.isReadOnly()
    pane.editor.undo()  # accepting was one undo step
    assert pane.editor.toPlainText() == DOC


def test_whole_document_when_nothing_is_selected(qtbot, pane, backend):
    pane.editor.setPlainText(DOC)
    start_action(qtbot, pane, WriteAction.PROOFREAD)
    assert backend.texts[-1] == DOC
    qtbot.mouseClick(pane.accept_button, Qt.LeftButton)
    assert pane.editor.toPlainText() == rewrite(DOC).split("\n", 1)[1]


def test_accept_part_of_a_diff_by_clicking_a_change_then_undo_and_redo(qtbot, pane):
    pane.editor.setPlainText(DOC)
    start = DOC.index(PARA)
    select(pane, start, start + len(PARA))
    start_action(qtbot, pane, WriteAction.REWRITE)
    changes = pane.diff.changes
    assert len(changes) == 3 and pane.apply_button.text() == "Apply 3 of 3"
    qtbot.mouseClick(pane.diff.viewport(), Qt.LeftButton, pos=pane.diff.change_point(changes[1]))
    assert pane.diff.accepted == {changes[0], changes[2]}
    assert pane.apply_button.text() == "Apply 2 of 3"
    hunks = pane.run.hunks
    qtbot.mouseClick(pane.apply_button, Qt.LeftButton)
    partial = DOC.replace(PARA, apply(PARA, hunks, {changes[0], changes[2]}))
    assert pane.editor.toPlainText() == partial
    assert "sleepy cat" not in partial and "fast brown" in partial and "was fast" in partial
    pane.editor.undo()
    assert pane.editor.toPlainText() == DOC
    pane.editor.redo()
    assert pane.editor.toPlainText() == partial


def test_reject_leaves_the_document_as_it_was(qtbot, pane):
    pane.editor.setPlainText(DOC)
    start_action(qtbot, pane, WriteAction.REWRITE)
    qtbot.mouseClick(pane.reject_button, Qt.LeftButton)
    assert pane.editor.toPlainText() == DOC
    assert pane.state == "idle" and not pane.editor.isReadOnly()


def test_stop_mid_action_keeps_the_document_and_the_lock_protects_it(qtbot, pane, backend):
    backend.delay = 0.05
    backend.reply = lambda text: " ".join(["word"] * 200)
    pane.editor.setPlainText(DOC)
    qtbot.mouseClick(pane.action_buttons[WriteAction.EXPAND], Qt.LeftButton)
    qtbot.waitUntil(lambda: "word word" in pane.diff.toPlainText(), timeout=10_000)
    assert pane.state == "running" and pane.stop_button.isVisible()
    pane.editor.setFocus()
    qtbot.keyClicks(pane.editor, "typed while locked")  # read-only: nothing can change the target
    assert pane.editor.toPlainText() == DOC
    assert not pane.drafts.isEnabled() and not pane.action_buttons[WriteAction.REWRITE].isEnabled()
    qtbot.mouseClick(pane.stop_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: pane.state == "idle", timeout=10_000)
    assert "Stopped" in pane.result_status.text()
    assert pane.editor.toPlainText() == DOC and not pane.editor.isReadOnly()
    qtbot.keyClicks(pane.editor, "!")
    assert pane.editor.toPlainText() != DOC  # editable again


def test_escape_stops_a_running_action(qtbot, pane, backend):
    backend.delay = 0.05
    backend.reply = lambda text: " ".join(["word"] * 200)
    pane.editor.setPlainText(DOC)
    qtbot.mouseClick(pane.action_buttons[WriteAction.SHORTEN], Qt.LeftButton)
    qtbot.waitUntil(lambda: "word" in pane.diff.toPlainText(), timeout=10_000)
    with qtbot.waitSignal(pane.sig_state, timeout=10_000, check_params_cb=lambda s: s == "idle"):
        qtbot.keyClick(pane.editor, Qt.Key_Escape)
    assert pane.editor.toPlainText() == DOC


def test_offsets_after_emoji_and_cjk_are_exact(qtbot, pane, backend):
    doc = "表情 😀🎉 ok.\n\nThe quick brown fox saw a lazy dog. It was quick. 👍"
    pane.editor.setPlainText(doc)
    start = doc.index("The quick")
    end = start + len(PARA)
    qt_start = start + 2  # two astral emoji before the selection: one more UTF-16 unit each
    select(pane, qt_start, qt_start + len(PARA))
    start_action(qtbot, pane, WriteAction.REWRITE)
    assert backend.texts[-1] == PARA
    qtbot.mouseClick(pane.accept_button, Qt.LeftButton)
    assert pane.editor.toPlainText() == doc[:start] + rewrite(PARA).split("\n", 1)[1] + doc[end:]


def test_nothing_to_do_and_no_instruction_are_explained_not_sent(qtbot, pane, backend):
    qtbot.mouseClick(pane.action_buttons[WriteAction.REWRITE], Qt.LeftButton)
    assert "no text" in pane.result_status.text().lower()
    pane.editor.setPlainText(DOC)
    qtbot.mouseClick(pane.custom_button, Qt.LeftButton)
    assert "instruction" in pane.result_status.text().lower()
    assert backend.calls == [] and pane.state == "idle"


def test_no_changes_and_a_failure_unlock_the_editor(qtbot, pane, backend):
    backend.reply = lambda text: text
    pane.editor.setPlainText(DOC)
    start_action(qtbot, pane, WriteAction.PROOFREAD, expect="idle")
    assert "No changes" in pane.result_status.text()
    backend.reply = rewrite
    backend.fail_after = 1
    with qtbot.waitSignal(pane.sig_error, timeout=10_000):
        qtbot.mouseClick(pane.action_buttons[WriteAction.REWRITE], Qt.LeftButton)
    assert pane.state == "idle" and pane.editor.toPlainText() == DOC and not pane.editor.isReadOnly()


def test_counts_words_and_characters(qtbot, pane):
    qtbot.keyClicks(pane.editor, "Hello there, world")
    assert pane.counts.text() == "3 words · 18 characters"


def test_drafts_are_saved_listed_renamed_and_reopened(qtbot, pane, store, tmp_path):
    qtbot.keyClicks(pane.editor, "Shopping list")
    qtbot.waitUntil(lambda: [d.text for d in store.drafts.list()] == ["Shopping list"], timeout=5_000)
    first = pane.draft_id
    assert pane.drafts.list.currentItem().text() == "Shopping list"
    qtbot.mouseClick(pane.drafts.new_button, Qt.LeftButton)
    assert pane.editor.toPlainText() == "" and pane.draft_id is None
    qtbot.keyClicks(pane.editor, "Letter to Sam")
    qtbot.waitUntil(lambda: len(store.drafts.list()) == 2, timeout=5_000)
    second = pane.draft_id
    pane.drafts.list.currentItem().setText("To Sam")  # what editing the item in place does
    assert store.drafts.get(second).title == "To Sam"
    pane.drafts.list.setCurrentRow(pane.drafts.ids().index(first))  # the user clicks the first draft
    assert pane.draft_id == first and pane.editor.toPlainText() == "Shopping list"
    qtbot.keyClicks(pane.editor, " and more")  # saved when another draft opens, not only on the timer
    pane.drafts.list.setCurrentRow(pane.drafts.ids().index(second))
    assert store.drafts.get(first).text == "Shopping list and more"
    pane.bridge.shutdown()
    pane.close()

    reopened = Store(tmp_path / "lmdesk.db")
    try:
        again = WritePane(pane.bridge, reopened)
        qtbot.addWidget(again)
        labels = sorted(again.drafts.list.item(i).text() for i in range(again.drafts.list.count()))
        assert labels == ["Shopping list and more", "To Sam"]
        assert again.draft_id == second and again.editor.toPlainText() == "Letter to Sam"  # the last one open
    finally:
        reopened.close()


def test_delete_a_draft_and_undo(qtbot, pane, store):
    a = store.drafts.create("", "Alpha")
    b = store.drafts.create("", "Beta")
    pane.drafts.refresh(None)
    pane.open_draft(b)
    qtbot.keyClicks(pane.editor, "!")  # not yet saved by the timer: deleting saves it first
    qtbot.mouseClick(pane.drafts.delete_button, Qt.LeftButton)
    assert [d.id for d in store.drafts.list()] == [a]
    assert pane.draft_id == a and pane.editor.toPlainText() == "Alpha"
    assert pane.drafts.undo_bar.isVisible() and "Beta!" in pane.drafts.undo_label.text()
    qtbot.mouseClick(pane.drafts.undo_button, Qt.LeftButton)
    assert sorted(d.id for d in store.drafts.list()) == [a, b]
    assert pane.draft_id == b and pane.editor.toPlainText() == "Beta!"


def test_no_model_is_an_error_for_the_banner(qtbot, store):
    from lmdesk.engine.bridge import EngineBridge

    bridge = EngineBridge()
    try:
        p = WritePane(bridge, store)
        qtbot.addWidget(p)
        p.editor.setPlainText(DOC)
        with qtbot.waitSignal(p.sig_error, timeout=1_000) as blocker:
            p.run_action(WriteAction.REWRITE)
        assert "No model" in blocker.args[0]
    finally:
        bridge.shutdown()


def test_the_selection_comes_back_after_reject_so_another_action_can_run(qtbot, pane):
    pane.editor.setPlainText(DOC)
    start = DOC.index(PARA)
    select(pane, start, start + len(PARA))
    start_action(qtbot, pane, WriteAction.REWRITE)
    assert not pane.editor.textCursor().hasSelection()  # the tinted target shows instead
    assert len(pane.editor.extraSelections()) == 1
    qtbot.mouseClick(pane.reject_button, Qt.LeftButton)
    assert pane.editor.textCursor().selectedText() == PARA and pane.editor.extraSelections() == []


def test_markdown_is_highlighted_but_the_text_stays_plain(qtbot, pane):
    doc = "# Title\n\n- item with **bold** 😀 and `code`\n\n```\n# not a heading\n```"
    pane.editor.setPlainText(doc)
    assert pane.editor.toPlainText() == doc
    block = pane.editor.document().findBlockByNumber(2)
    formats = {(r.start, r.length, r.format.fontWeight()) for r in block.layout().formats()}
    assert (0, 2, 700) in formats  # the "- " marker
    assert (12, 8, 700) in formats  # **bold**
    fenced = pane.editor.document().findBlockByNumber(5)
    assert fenced.userState() == 1  # inside the code fence: not a heading


def test_token_count_of_the_document_comes_from_the_model(qtbot, pane, backend):
    pane.editor.setPlainText("y" * 80)
    expected = backend.count_tokens([ChatMessage("user", "y" * 80)])
    qtbot.waitUntil(lambda: "tokens" in pane.counts.text(), timeout=10_000)
    assert pane.counts.text().endswith(f"{expected:,} / {pane.bridge.model.context_length:,} tokens")
