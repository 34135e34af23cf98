"""`lmdesk write` and the Write pane run an action through the same code (lmdesk.core.write.run):
for the same text and action they send the model the same messages with the same parameters,
and end with the same document."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from lmdesk.cli import build_parser
from lmdesk.cli import common as cli_common
from lmdesk.cli import write as cli_write
from lmdesk.config import app_paths
from lmdesk.core.params import GenerationParams
from lmdesk.core.write.actions import WriteAction
from lmdesk.core.write.run import ActionError, TextTooLongError, prepare_action
from lmdesk.ui.write.editor_text import to_index, to_position
from lmdesk.ui.write_pane import WritePane, WriteSettings
from tests.pane_fakes import EchoBackend, make_bridge

TEXT = "Their going too the park tomorow.\n\nThe 🦊 quick brown fox saw a lazy dog, it was quick.\n"
CJK = "今天天气很好，我们去公园散步。孩子们在草地上玩耍。"
INSTRUCTION = "Use words a child knows"

# (action name on the command line, the action, its instruction)
CASES = [
    ("rewrite", WriteAction.REWRITE, ""),
    ("proofread", WriteAction.PROOFREAD, ""),
    ("summarise", WriteAction.SUMMARISE, ""),
    ("bullets", WriteAction.BULLETS, ""),
    ("custom", WriteAction.CUSTOM, INSTRUCTION),
    ("continue", WriteAction.CONTINUE, ""),
]


def cli_args(name: str, instruction: str, *extra: str):
    argv = ["write", "--action", name, *extra]
    if instruction:
        argv += ["--instruction", instruction]
    return build_parser().parse_args([*argv, "-"])


def pane_run(action: WriteAction, text: str, n_ctx: int, instruction: str):
    """What the pane prepares with the whole text selected (Qt positions, converted as it does)."""
    settings = WriteSettings()
    end = to_position(text, len(text))
    return prepare_action(action, text, to_index(text, 0), to_index(text, end), n_ctx=n_ctx,
                          instruction=instruction, temperature=settings.temperature, seed=settings.seed)


@pytest.mark.parametrize("name,action,instruction", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("text", [TEXT, CJK, TEXT * 60], ids=["short", "cjk", "long"])
@pytest.mark.parametrize("n_ctx", [2048, 8192])
def test_cli_and_pane_prepare_the_same_request(name, action, instruction, text, n_ctx):
    cli = cli_write.prepare(cli_args(name, instruction), cli_write.chosen_action(cli_args(name, instruction)),
                            text, n_ctx)
    pane = pane_run(action, text, n_ctx, instruction)
    assert cli.messages == pane.messages
    assert cli.params == pane.params
    assert (cli.start, cli.end, cli.original, cli.before) == (pane.start, pane.end, pane.original, pane.before)


def test_max_tokens_only_caps_the_shared_budget():
    args = cli_args("rewrite", "", "--max-tokens", "40")
    capped = cli_write.prepare(args, WriteAction.REWRITE, TEXT, 2048)
    pane = pane_run(WriteAction.REWRITE, TEXT, 2048, "")
    assert capped.messages == pane.messages
    assert capped.params.max_tokens == min(40, pane.params.max_tokens)


def test_a_text_too_long_for_the_context_is_refused_by_both():
    with pytest.raises(TextTooLongError) as refused:
        pane_run(WriteAction.REWRITE, TEXT * 60, 512, "")
    assert refused.value.context_length == 512 and refused.value.prompt_tokens > 400
    with pytest.raises(TextTooLongError):
        cli_write.prepare(cli_args("rewrite", ""), WriteAction.REWRITE, TEXT * 60, 512)
    with pytest.raises(ActionError):
        pane_run(WriteAction.CUSTOM, TEXT, 2048, "  ")


# ---- end to end: the real pane and the real command on the same fake model ----------------------


def rewrite(text: str) -> str:
    """The fake model's answer: a few word changes, wrapped in chatter that must be cleaned away."""
    return "Sure! Here is the text:\n" + text.replace("quick", "fast").replace("lazy", "sleepy")


@dataclass
class RecordingBackend(EchoBackend):
    """EchoBackend that also keeps the parameters of every generation."""

    params: list[GenerationParams] = field(default_factory=list)

    def generate(self, messages, params, cancel):
        self.params.append(params)
        return super().generate(messages, params, cancel)


def run_in_pane(qtbot, store, action: WriteAction, text: str, instruction: str):
    backend = RecordingBackend(reply=rewrite)
    bridge = make_bridge(qtbot, backend)
    pane = WritePane(bridge, store)
    qtbot.addWidget(pane)
    try:
        pane.editor.setPlainText(text)
        cursor = pane.editor.textCursor()
        cursor.select(QTextCursor.Document)
        pane.editor.setTextCursor(cursor)
        if instruction:
            qtbot.keyClicks(pane.instruction, instruction)
        with qtbot.waitSignal(pane.sig_state, timeout=10_000, check_params_cb=lambda s: s == "review"):
            qtbot.mouseClick(pane.action_buttons[action], Qt.LeftButton)
        qtbot.mouseClick(pane.accept_button, Qt.LeftButton)
        return backend, pane.editor.toPlainText()
    finally:
        bridge.shutdown()


def run_in_cli(monkeypatch, capsys, name: str, text: str, instruction: str):
    import lmdesk.backends.fake as fake

    backend = RecordingBackend(reply=rewrite)
    monkeypatch.setattr(fake, "load", lambda *_args: backend)
    monkeypatch.setattr(cli_common, "resolve_model", lambda *_args: ("fake", "fake"))
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    capsys.readouterr()
    assert cli_write.run(cli_args(name, instruction), app_paths().ensure()) == 0
    out = capsys.readouterr()
    assert out.err == ""
    return backend, out.out


@pytest.mark.parametrize("name,action,instruction", CASES, ids=[c[0] for c in CASES])
def test_the_pane_and_the_command_send_the_same_and_print_the_same(
        qtbot, store, monkeypatch, capsys, name, action, instruction):
    pane_backend, document = run_in_pane(qtbot, store, action, TEXT, instruction)
    cli_backend, printed = run_in_cli(monkeypatch, capsys, name, TEXT, instruction)
    assert len(pane_backend.calls) == len(cli_backend.calls) == 1
    assert cli_backend.calls == pane_backend.calls
    assert cli_backend.params == pane_backend.params
    assert printed == (document if document.endswith("\n") else document + "\n")
    if action is WriteAction.CONTINUE:
        assert printed.startswith(TEXT)
    else:
        assert "Sure!" not in printed and "fast" in printed
