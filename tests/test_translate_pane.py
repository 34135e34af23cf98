"""The Translate pane, clicked like a user would, against a fake model that 'translates' by rule."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from lmdesk.core.text.chunking import reassemble
from lmdesk.core.translate.plan import paragraphs
from lmdesk.ui import translate_pane as translate_module
from lmdesk.ui.translate_pane import TranslatePane
from tests.pane_fakes import EchoBackend, make_bridge

DOC = (
    "# A short guide\n\n"
    "The first paragraph says hello. It has two sentences.\n\n"
    "- first item\n- second item\n\n"
    "```\ncode stays as it is\n```\n\n"
    "Send the invoice to lmdesk support.\n"
)


def shout(text: str) -> str:
    """The fake model's 'translation', wrapped in chatter the pane must remove."""
    return "Here is the translation:\n" + text.upper()


@pytest.fixture
def backend():
    return EchoBackend(reply=shout)


@pytest.fixture
def pane(qtbot, backend, store):
    bridge = make_bridge(qtbot, backend)
    p = TranslatePane(bridge, store)
    qtbot.addWidget(p)
    p.resize(980, 600)
    p.show()
    p.source_picker.set_code("en")
    p.target_picker.set_code("fr")
    yield p
    bridge.shutdown()


def translate(qtbot, pane: TranslatePane, timeout: int = 15_000) -> str:
    with qtbot.waitSignal(pane.sig_done, timeout=timeout) as blocker:
        qtbot.mouseClick(pane.translate_button, Qt.LeftButton)
    return blocker.args[0]


def expected_output(pane: TranslatePane, transform=str.upper) -> str:
    plan = pane.runner.plan
    return reassemble(plan.chunks, [transform(c.text) if c.translate else None for c in plan.chunks])


def test_pickers_offer_at_least_twenty_languages_with_the_required_ones(pane):
    codes = [pane.target_picker.itemData(i) for i in range(pane.target_picker.count())]
    assert len(codes) >= 20
    for code in ("zh-Hans", "ja", "ko", "ar", "he", "ru", "es", "fr", "de", "pt", "hi"):
        assert code in codes
    assert pane.source_picker.itemData(0) == "auto"


def test_translates_chunk_by_chunk_with_progress_and_keeps_the_structure(qtbot, pane, backend):
    progress: list[tuple[int, int]] = []
    pane.sig_progress.connect(lambda done, total: progress.append((done, total)))
    qtbot.keyClicks(pane.source, "x")  # typing enables Translate
    pane.source.setPlainText(DOC)
    out = translate(qtbot, pane)
    plan = pane.runner.plan
    sent = [c.text for c in plan.chunks if c.translate]
    assert backend.texts == sent  # one request per chunk, in order; the code block is not sent
    assert out == expected_output(pane) == pane.output.toPlainText()
    assert "Here is" not in out  # chatter cleaned
    assert out.startswith("# A SHORT GUIDE\n\n") and "\n- FIRST ITEM\n- SECOND ITEM\n" in out
    assert "```\ncode stays as it is\n```" in out
    assert len(paragraphs(out)) == len(paragraphs(DOC))
    assert progress == [(i, plan.total) for i in range(plan.total + 1)]
    assert pane.progress.maximum() == pane.progress.value() == plan.total
    assert pane.progress.format() == f"Done — {plan.total} chunks"


def test_stop_then_resume_continues_from_the_first_untranslated_chunk(qtbot, pane, backend):
    backend.delay = 0.03
    pane.source.setPlainText(DOC)
    qtbot.mouseClick(pane.translate_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: pane.runner.plan is not None and pane.runner.plan.done == 1, timeout=10_000)
    qtbot.waitUntil(lambda: pane.output.toPlainText() != pane.output.committed_text, timeout=10_000)
    assert pane.progress.format() == f"Chunk 2 of {pane.runner.plan.total}"
    with qtbot.waitSignal(pane.sig_done, timeout=10_000):
        qtbot.mouseClick(pane.stop_button, Qt.LeftButton)
    plan = pane.runner.plan
    assert plan.done == 1 and pane.progress.value() == 1
    assert pane.output.toPlainText() == plan.output(partial=True) == "# A SHORT GUIDE\n\n"
    assert pane.resume_button.isEnabled() and not pane.source.isReadOnly()
    sent_before = len(backend.texts)
    backend.delay = 0.0
    with qtbot.waitSignal(pane.sig_done, timeout=10_000) as blocker:
        qtbot.mouseClick(pane.resume_button, Qt.LeftButton)
    chunks = [c.text for c in plan.chunks if c.translate]
    assert backend.texts[sent_before:] == chunks[1:]  # resumed at chunk 2; chunk 1 not sent again
    assert blocker.args[0] == expected_output(pane)
    assert not pane.resume_button.isEnabled()


def test_resume_is_offered_only_for_the_same_text_and_languages(qtbot, pane, backend):
    backend.delay = 0.03
    pane.source.setPlainText(DOC)
    qtbot.mouseClick(pane.translate_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: pane.runner.plan is not None and pane.runner.running, timeout=10_000)
    with qtbot.waitSignal(pane.sig_done, timeout=10_000):
        pane.stop()
    assert pane.resume_button.isEnabled()
    pane.target_picker.set_code("de")
    assert not pane.resume_button.isEnabled()
    pane.target_picker.set_code("fr")
    assert pane.resume_button.isEnabled()
    pane.source.appendPlainText("More text.")
    assert not pane.resume_button.isEnabled()


def test_glossary_is_applied_in_the_prompt_and_kept(qtbot, pane, backend, store):
    qtbot.mouseClick(pane.glossary_button, Qt.LeftButton)
    assert pane.glossary.isVisible()
    pane.glossary.setPlainText("lmdesk\ninvoice = facture\n")
    assert pane.glossary_button.text() == "Glossary (2)"
    pane.source.setPlainText(DOC)
    translate(qtbot, pane)
    systems = {c[-1].content.split(":\n\n", 1)[1]: c[0].content for c in backend.calls}
    invoice = systems["Send the invoice to lmdesk support."]
    assert '"invoice" → "facture"' in invoice and '"lmdesk" → keep as is' in invoice
    assert "glossary" not in systems["first item"].lower()  # only the terms a chunk uses
    pane._save_state()
    assert store.kv.get("translate.glossary") == "lmdesk\ninvoice = facture\n"


def test_right_to_left_targets_are_shown_right_to_left(pane):
    for code, rtl in (("ar", True), ("he", True), ("en", False), ("fa", True), ("ja", False)):
        pane.target_picker.set_code(code)
        direction = Qt.RightToLeft if rtl else Qt.LeftToRight
        assert pane.output.layoutDirection() == direction
        assert pane.output.document().defaultTextOption().textDirection() == direction


def test_chinese_japanese_and_emoji_come_through_whole(qtbot, pane, backend):
    backend.reply = lambda text: text  # echo, so every character must survive the round trip
    text = "你好，世界！😀 今天很好。\n\n日本語のテキストです 🎉👍🏽\n\n한국어 문장입니다."
    pane.source_picker.set_code("auto")
    pane.target_picker.set_code("zh-Hant")
    pane.source.setPlainText(text)
    out = translate(qtbot, pane)
    assert out == text and "\ufffd" not in pane.output.toPlainText()


def test_auto_detect_names_the_language_and_tells_the_model(qtbot, pane, backend):
    pane.source_picker.set_code("auto")
    pane.target_picker.set_code("en")
    pane.source.setPlainText("Bonjour tout le monde. Nous sommes très heureux de vous voir aujourd'hui.")
    translate(qtbot, pane)
    assert "French" in pane.source_picker.itemText(0)
    assert "from French into English" in backend.calls[-1][0].content
    assert "detected French" in pane.detail.text()


def test_swap_copy_and_clear(qtbot, pane):
    pane.source.setPlainText("Hello there.")
    out = translate(qtbot, pane)
    qtbot.mouseClick(pane.copy_button, Qt.LeftButton)
    assert QGuiApplication.clipboard().text() == out == "HELLO THERE."
    qtbot.mouseClick(pane.swap_button, Qt.LeftButton)
    assert (pane.source_picker.code(), pane.target_picker.code()) == ("fr", "en")
    assert pane.source.toPlainText() == "HELLO THERE." and pane.output.toPlainText() == ""
    qtbot.mouseClick(pane.clear_button, Qt.LeftButton)
    assert pane.source.toPlainText() == "" and pane.output.toPlainText() == ""
    assert not pane.translate_button.isEnabled()


def test_swap_after_stop_keeps_the_source_text(qtbot, pane, backend):
    backend.delay = 0.03
    pane.source.setPlainText(DOC)
    qtbot.mouseClick(pane.translate_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: pane.runner.plan is not None and pane.runner.plan.done == 1, timeout=10_000)
    with qtbot.waitSignal(pane.sig_done, timeout=10_000):
        qtbot.mouseClick(pane.stop_button, Qt.LeftButton)
    partial = pane.output.toPlainText()
    qtbot.mouseClick(pane.swap_button, Qt.LeftButton)  # a partial translation must not replace the source
    assert (pane.source_picker.code(), pane.target_picker.code()) == ("fr", "en")
    assert pane.source.toPlainText() == DOC and pane.output.toPlainText() == partial
    qtbot.mouseClick(pane.swap_button, Qt.LeftButton)  # swapping back: Resume is offered again
    assert pane.source.toPlainText() == DOC and pane.resume_button.isEnabled()


def test_big_input_is_planned_off_the_gui_thread(qtbot, pane, backend, monkeypatch):
    threads: list[threading.Thread] = []
    real = translate_module.plan_translation

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(translate_module, "plan_translation", spy)
    backend.delay = 0.03
    big = "\n\n".join(f"Paragraph {i} has a few words in it. " * 20 for i in range(400))  # ~300 KB
    pane.source.setPlainText(big)
    qtbot.mouseClick(pane.translate_button, Qt.LeftButton)
    assert pane.status.text() == "Preparing…" and pane.stop_button.isEnabled()
    qtbot.waitUntil(lambda: pane.runner.running, timeout=30_000)
    assert threads and threads[0] is not threading.main_thread()
    assert pane.runner.plan.total >= 400 and pane.progress.maximum() == pane.runner.plan.total
    with qtbot.waitSignal(pane.sig_done, timeout=10_000):
        pane.stop()


def test_a_failed_chunk_keeps_the_done_ones_and_resume_retries(qtbot, pane, backend):
    calls = {"n": 0}

    def flaky(text: str) -> str:
        calls["n"] += 1
        backend.fail_after = 0 if calls["n"] == 2 else None  # the second request fails once
        return shout(text)

    backend.reply = flaky
    pane.source.setPlainText(DOC)
    with qtbot.waitSignal(pane.sig_error, timeout=10_000) as error:
        qtbot.mouseClick(pane.translate_button, Qt.LeftButton)
    assert "failed" in error.args[0]
    qtbot.waitUntil(lambda: not pane.busy, timeout=10_000)
    assert pane.runner.plan.done == 1 and pane.resume_button.isEnabled()
    with qtbot.waitSignal(pane.sig_done, timeout=10_000) as done:
        qtbot.mouseClick(pane.resume_button, Qt.LeftButton)
    assert done.args[0] == expected_output(pane)


def test_languages_are_remembered(qtbot, pane, store):
    pane.source_picker.set_code("de")
    pane.target_picker.set_code("ja")
    pane._save_state()
    again = TranslatePane(pane.bridge, store)
    qtbot.addWidget(again)
    assert (again.source_picker.code(), again.target_picker.code()) == ("de", "ja")
