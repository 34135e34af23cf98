"""SIGTERM, SIGHUP and SIGINT quit the real app like Quit, also while a reply streams.

The child (tests/chat_crash_child.py --app) is the whole `python -m lmdesk` start-up on the
embedded model, streaming a long reply. The test signals it the way a session manager, `kill` or
Ctrl+C would, and then requires what Quit guarantees: the process ends by itself with 128 + the
signal's number, the reply is `stopped` with the text so far, settings.json holds the loaded
model, and the lock file is gone so that the next start gets it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lmdesk.config import Settings, app_paths
from lmdesk.core.storage.store import Store
from lmdesk.ui.app import single_instance_lock

REPO = Path(__file__).resolve().parents[1]

SIGNALS = [name for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name)]


@pytest.mark.parametrize("name", SIGNALS)
def test_signal_mid_stream_quits_like_quit(lmdesk_home, embedded_model_path, name):
    signum = getattr(signal, name)
    env = {**os.environ, "LMDESK_HOME": str(lmdesk_home), "QT_QPA_PLATFORM": "offscreen",
           "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, str(REPO / "tests" / "chat_crash_child.py"), "--app"], cwd=REPO,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(300, child.kill)  # a child that hangs must not hang the run
    watchdog.start()
    saved: list[tuple[int, str]] = []
    signalled = False
    try:
        for line in child.stdout:  # until the child closes stdout, i.e. exits
            kind, _, rest = line.rstrip("\n").partition(" ")
            if kind != "saved":
                continue
            mid, text = rest.split(" ", 1)
            saved.append((int(mid), json.loads(text)))
            if not signalled and len(saved) >= 2 and saved[-2][0] == saved[-1][0]:  # surely mid-stream
                os.kill(child.pid, signum)
                signalled = True
        child.wait(timeout=30)  # stdout is closed: the process is ending by itself
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
        _, err = child.communicate(timeout=30)
    assert signalled, err[-2000:]
    assert child.returncode == 128 + signum, err[-2000:]

    paths = app_paths()
    with Store(paths.database) as store:  # reopening would mark a leftover `streaming` row `interrupted`
        reply_id, reply_text = saved[-1]
        reply = store.get_message(reply_id)
        assert reply.status == "stopped"
        assert reply.content.startswith(reply_text) and reply.content.strip()

    assert paths.settings_file.is_file()
    assert Path(Settings.load(paths).default_model).resolve() == Path(embedded_model_path).resolve()

    assert not (paths.data / "lmdesk.lock").exists()
    lock = single_instance_lock(paths)
    assert lock is not None
    lock.unlock()
