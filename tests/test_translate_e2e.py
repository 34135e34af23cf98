"""The Write and Translate panes end to end on the real embedded model (SmolLM2-135M).

It is a tiny model: these tests check what lmdesk owns — structure, progress, streaming, no
broken characters — never the quality of its translations."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from lmdesk.core.write.actions import WriteAction
from lmdesk.core.translate.plan import paragraphs
from lmdesk.engine.bridge import EngineBridge
from lmdesk.ui.translate_pane import TranslatePane
from lmdesk.ui.write_pane import WritePane

ZH = (
    "今天天气很好，我们去公园散步。\n\n"
    "孩子们在草地上玩耍，老人们在树下下棋。\n\n"
    "晚上我们一起吃饭，大家都很开心。😀"
)
LONG = (
    "# Travel notes\n\n"
    "We left early in the morning. The road was empty and the sky was clear. We stopped for coffee "
    "in a small village. The baker gave us fresh bread. Then we drove on to the coast.\n\n"
    "- pack a coat\n- bring water\n\n"
    "At the sea the wind was strong. We walked on the beach for an hour.\n"
)


@pytest.fixture
def bridge(qtbot, embedded_model_path):
    b = EngineBridge()
    with qtbot.waitSignal(b.sig_model_changed, timeout=60_000):
        b.load_model("llama", embedded_model_path)
    yield b
    b.shutdown()


@pytest.fixture
def pane(qtbot, bridge, store):
    p = TranslatePane(bridge, store)
    qtbot.addWidget(p)
    p.settings.temperature = 0.0
    p.settings.seed = 1
    p.settings.max_tokens_cap = 64  # the model may ramble; the structure must hold anyway
    p.show()
    return p


def test_three_chinese_paragraphs_become_three_english_ones(qtbot, pane):
    streamed: list[str] = []
    pane.runner.sig_text.connect(streamed.append)
    pane.source_picker.set_code("auto")
    pane.target_picker.set_code("en")
    pane.source.setPlainText(ZH)
    with qtbot.assertNotEmitted(pane.sig_error):
        with qtbot.waitSignal(pane.sig_done, timeout=240_000) as done:
            qtbot.mouseClick(pane.translate_button, Qt.LeftButton)
    out = done.args[0]
    assert out == pane.output.toPlainText()
    assert len(paragraphs(out)) == 3
    assert "\ufffd" not in out and "\ufffd" not in "".join(streamed)
    assert streamed  # the answer streamed in pieces before each chunk was committed
    assert pane.runner.plan.detected == "zh-Hans" and "Chinese" in pane.source_picker.itemText(0)


def test_a_long_input_runs_in_several_chunks_with_progress(qtbot, pane):
    pane.settings.max_chunk_tokens = 24  # small chunks: the long paragraph is split into sentences
    pane.settings.max_tokens_cap = 40
    pane.source_picker.set_code("en")
    pane.target_picker.set_code("es")
    seen: list[tuple[int, int, int, str]] = []
    pane.sig_progress.connect(
        lambda done, total: seen.append((done, total, pane.progress.value(), pane.progress.format()))
    )
    pane.source.setPlainText(LONG)
    with qtbot.waitSignal(pane.sig_done, timeout=300_000) as done:
        qtbot.mouseClick(pane.translate_button, Qt.LeftButton)
    total = pane.runner.plan.total
    assert total >= 6
    assert [s[0] for s in seen] == list(range(total + 1)) and {s[1] for s in seen} == {total}
    assert [s[2] for s in seen] == list(range(total + 1))  # the bar moved with every chunk
    assert seen[1][3] == f"Chunk 1 of {total}" and seen[-1][3] == f"Chunk {total} of {total}"
    out = done.args[0]
    assert len(paragraphs(out)) == len(paragraphs(LONG))
    lines = out.splitlines()
    assert lines[0].startswith("# ") and lines[4].startswith("- ") and lines[5].startswith("- ")
    assert "\ufffd" not in out


def test_a_write_action_on_the_real_model_only_touches_the_selection(qtbot, bridge, store):
    p = WritePane(bridge, store)
    qtbot.addWidget(p)
    p.settings.temperature = 0.0
    p.settings.seed = 1
    p.show()
    doc = "Title\n\nthis sentence have a error in it.\n\nThe end."
    p.editor.setPlainText(doc)
    start = doc.index("this")
    cursor = p.editor.textCursor()
    cursor.setPosition(start)
    cursor.setPosition(start + len("this sentence have a error in it."), cursor.MoveMode.KeepAnchor)
    p.editor.setTextCursor(cursor)
    with qtbot.waitSignal(p.sig_state, timeout=120_000, check_params_cb=lambda s: s != "running"):
        qtbot.mouseClick(p.action_buttons[WriteAction.PROOFREAD], Qt.LeftButton)
    if p.state == "review":
        qtbot.mouseClick(p.accept_button, Qt.LeftButton)
    text = p.editor.toPlainText()
    assert text.startswith("Title\n\n") and text.endswith("\n\nThe end.")
    assert "\ufffd" not in text and not p.editor.isReadOnly()
    p.editor.undo()
    assert p.editor.toPlainText() == doc
