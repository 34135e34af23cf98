"""Run by test_chat_crash.py and test_quit_signals.py: the real app window on the embedded model,
streaming a long reply.

It finishes one short exchange, then asks for a long reply, and prints a line each time the
reply's saved text grows (`saved <message id> <json text>`), so the parent can kill or signal it
mid-stream knowing what must have survived. With `--app` it runs the whole `python -m lmdesk`
start-up (lock file, signal handling, shutdown), driving the window that start-up builds.
Not a test module (no test_ prefix).
"""

from __future__ import annotations

import json
import runpy
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from lmdesk.core.chat.conversation import ConversationSettings
from lmdesk.ui.app import create_window


def drive(win) -> QTimer:
    """Connect the script to `win`; returns the polling timer, which the caller must keep."""
    chat = win.chat
    state = {"stage": 0, "saved": 0}

    def ask(text: str, max_tokens: int) -> None:
        # Low temperature and no repeat penalty: the tiny model keeps counting for a long while.
        chat.apply_settings(ConversationSettings(max_tokens=max_tokens, temperature=0.2, repeat_penalty=1.0))
        chat.composer.setPlainText(text)
        chat.send()

    def on_loaded(*_args) -> None:
        if state["stage"] == 0:
            state["stage"] = 1
            ask("Say hello.", 24)

    def on_done(message_id: int, _stats) -> None:
        m = win.store.get_message(message_id)
        if state["stage"] == 1:
            print("finished", message_id, json.dumps(m.content), flush=True)
            state["stage"] = 2
            ask("Count from 1 to 1000, one number per line.", 4000)
        else:  # the model ended before the kill: ask again, the parent is waiting for a flush
            state["saved"] = 0
            chat.regenerate()

    def poll() -> None:
        gen = chat.streamer.current
        if state["stage"] != 2 or gen is None:
            return
        saved = gen.writer.text[: len(gen.writer.text) - len(gen.writer.pending)]
        if len(saved) > state["saved"]:
            state["saved"] = len(saved)
            print("saved", gen.message_id, json.dumps(saved), flush=True)

    win.bridge.sig_model_changed.connect(on_loaded)
    chat.streamer.sig_done.connect(on_done)
    timer = QTimer(interval=20)
    timer.timeout.connect(poll)
    timer.start()
    return timer


def main() -> int:
    app = QApplication(sys.argv)
    win = create_window()
    timer = drive(win)  # noqa: F841 (kept alive until the event loop ends)
    win.show()
    return app.exec()


def run_app() -> None:
    """`python -m lmdesk` with the window it builds driven by this script; exits with its code."""
    import lmdesk.ui.app as app_module

    build, timers = app_module.build_window, []

    def build_and_drive(paths):
        win = build(paths)
        timers.append(drive(win))
        return win

    app_module.build_window = build_and_drive
    sys.argv = ["lmdesk"]
    runpy.run_module("lmdesk", run_name="__main__", alter_sys=True)  # ends with sys.exit


if __name__ == "__main__":
    if sys.argv[1:] == ["--app"]:
        run_app()
    sys.exit(main())
