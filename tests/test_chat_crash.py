"""SIGKILL the real app while the embedded model streams a reply; nothing finished may be lost.

The child (tests/chat_crash_child.py) is the real main window from create_window(). After the
kill the database must pass `PRAGMA integrity_check`, the finished exchange must be intact, and
the partial reply must hold at least the text the child had saved, marked `interrupted` once the
store is reopened (as the app does at start-up).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from lmdesk.config import app_paths
from lmdesk.core.storage.store import Store

REPO = Path(__file__).resolve().parents[1]


def test_sigkill_mid_stream_keeps_finished_messages_and_the_partial_reply(lmdesk_home):
    env = {**os.environ, "LMDESK_HOME": str(lmdesk_home), "QT_QPA_PLATFORM": "offscreen",
           "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, str(REPO / "tests" / "chat_crash_child.py")], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(300, child.kill)  # a child that never prints must not hang the run
    watchdog.start()
    finished: tuple[int, str] | None = None
    saved: list[tuple[int, str]] = []
    try:
        for line in child.stdout:
            kind, mid, text = line.rstrip("\n").split(" ", 2)
            if kind == "finished":
                finished = (int(mid), json.loads(text))
            elif kind == "saved":
                saved.append((int(mid), json.loads(text)))
                if len(saved) >= 2 and saved[-2][0] == saved[-1][0]:  # a second save: surely mid-stream
                    break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
        _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err[-2000:]
    assert finished is not None and saved, err[-2000:]

    db = app_paths().database
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    raw.close()
    with Store(db) as store:  # reopening marks the leftover streaming row
        done = store.get_message(finished[0])
        assert done.status == "complete" and done.content == finished[1] and done.stats["generated_tokens"] > 0
        partial_id, partial_text = saved[-1]
        partial = store.get_message(partial_id)
        assert partial.status == "interrupted"
        assert partial.content.startswith(partial_text) and partial.content.strip()
        path = store.load_tree(partial.conversation_id).active_path()
        assert [m.role for m in path] == ["user", "assistant", "user", "assistant"]
        assert path[-1].id == partial_id and path[0].content == "Say hello."
