"""Render the Write and Translate screenshots from real runs with the embedded model (offscreen Qt).

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots_panes.py
     → docs/screenshots/write.png, docs/screenshots/translate.png (and translate-rtl.png)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LMDESK_HOME", tempfile.mkdtemp(prefix="lmdesk-shots-"))

from PySide6.QtGui import QTextCursor  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from lmdesk.core.write.actions import WriteAction  # noqa: E402
from lmdesk.ui.app import create_window  # noqa: E402
from screenshots import spin  # noqa: E402  (scripts/ is on sys.path when run as a script)

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
LETTER = (
    "# Team update\n\n"
    "hey everyone, the new build is ready and its way faster then the old one. "
    "pls try it today and tell me what breaks.\n\n"
    "Thanks for all the hard work this month.\n"
)
ZH = (
    "# 旅行笔记\n\n"
    "今天天气很好，我们去公园散步。孩子们在草地上玩耍。\n\n"
    "- 带一件外套\n- 带水\n\n"
    "晚上我们一起吃饭，大家都很开心。😀\n"
)


def write_shot(app: QApplication, win) -> None:
    pane = win.write
    win.tabs.setCurrentWidget(pane)
    pane.store.drafts.create("Shopping list", "- apples\n- bread\n- coffee\n")
    pane.store.drafts.create("", "Ideas for the weekend trip\n\nA walk by the lake, then lunch in town.")
    pane.drafts.refresh(None)
    pane.new_draft()
    pane.editor.setPlainText(LETTER)
    pane.save()
    start = LETTER.index("hey")
    end = LETTER.index("\n\nThanks")
    cursor = pane.editor.textCursor()
    cursor.setPosition(start)
    cursor.setPosition(end, QTextCursor.KeepAnchor)
    pane.editor.setTextCursor(cursor)
    pane.settings.temperature = 0.0
    pane.settings.seed = 3
    pane.run_action(WriteAction.PROOFREAD)
    spin(app, lambda: pane.state != "running")
    if pane.state == "review" and len(pane.diff.changes) > 2:
        pane.diff.toggle(pane.diff.changes[-1])  # one change rejected, to show both looks
    win.grab().save(str(OUT / "write.png"))
    if pane.state == "review":
        pane.reject()


def translate_shot(app: QApplication, win) -> None:
    pane = win.translate
    win.tabs.setCurrentWidget(pane)
    pane.settings.temperature = 0.0
    pane.settings.seed = 1
    pane.settings.max_tokens_cap = 60
    pane.source_picker.set_code("auto")
    pane.target_picker.set_code("en")
    pane.glossary.setPlainText("公园 = park\nlmdesk\n")
    pane.source.setPlainText(ZH)
    pane.translate()
    # Mid-run, as the user sees it: two chunks done, the third streaming, the bar saying so.
    spin(app, lambda: pane.runner.plan is not None and pane.runner.plan.done >= 2
         and pane.output.toPlainText() != pane.output.committed_text)
    win.grab().save(str(OUT / "translate.png"))
    spin(app, lambda: not pane.busy)
    win.grab().save(str(OUT / "translate-done.png"))
    # Right to left: an Arabic target lays the output out from the right.
    pane.target_picker.set_code("ar")
    pane.source.setPlainText("Good morning.\n\nThe weather is nice today.")
    pane.translate()
    spin(app, lambda: not pane.busy)
    win.grab().save(str(OUT / "translate-rtl.png"))


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    OUT.mkdir(parents=True, exist_ok=True)
    win = create_window()
    win.resize(1100, 720)
    win.show()
    spin(app, lambda: win.bridge.model is not None)
    write_shot(app, win)
    translate_shot(app, win)
    win.close()
    win.bridge.shutdown()
    for name in ("write.png", "translate.png", "translate-done.png", "translate-rtl.png"):
        print(OUT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
