"""Kill a process with SIGKILL while it streams a reply into the store; nothing finished may be lost.

The child writes three finished replies, then streams an endless one through StreamWriter,
committing on every piece (interval 0), so the kill lands at an arbitrary point — often inside a
commit. It reports what it has durably written; after the kill the file must pass
`PRAGMA integrity_check`, every finished reply must be intact, and the partial one must hold at
least what was reported, and be marked `interrupted` once the store is reopened.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from lmdesk.core.storage.store import Store
from tests.test_store import fts_consistent

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys
from lmdesk.core.storage.store import Store
from lmdesk.core.storage.stream_writer import StreamWriter

s = Store(sys.argv[1])
cid = s.create_conversation(sys.argv[2])
parent = None
for k in range(3):
    u = s.add_message(cid, parent, "user", f"question {k}")
    a = s.begin_assistant(u, "fake")
    w = StreamWriter(s, a, interval=0.0)
    for j in range(40):
        w.feed(f"r{k}-{j} ")
    w.finish("complete", {"generated_tokens": 40})
    print(f"done {a}", flush=True)
    parent = a
u = s.add_message(cid, parent, "user", "and now a very long answer")
a = s.begin_assistant(u, "fake")
w = StreamWriter(s, a, interval=0.0)
j = 0
while True:
    w.feed(f"p{j} ")
    j += 1
    if j % 25 == 0:
        print(f"flushed {a} {len(w.text)}", flush=True)
"""


def _finished_text(k: int) -> str:
    return "".join(f"r{k}-{j} " for j in range(40))


def _partial_text(n_chars: int) -> str:
    out, j = [], 0
    while sum(map(len, out)) < n_chars:
        out.append(f"p{j} ")
        j += 1
    return "".join(out)


def _run_and_kill(db: Path, title: str, flushes_before_kill: int) -> tuple[list[int], int, int]:
    """Start the child, kill it with SIGKILL mid-stream; returns (finished ids, partial id, chars reported)."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db), title], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    done: list[int] = []
    partial, reported, flushes = 0, 0, 0
    try:
        while flushes < flushes_before_kill:
            line = proc.stdout.readline()
            assert line, f"child ended early: {proc.stderr.read()}"
            kind, mid, *rest = line.split()
            if kind == "done":
                done.append(int(mid))
            else:
                partial, reported, flushes = int(mid), int(rest[0]), flushes + 1
        proc.send_signal(signal.SIGKILL)  # while it keeps committing
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return done, partial, reported


def test_sigkill_while_streaming_loses_nothing_finished(tmp_path):
    db = tmp_path / "crash.sqlite3"
    survivors: dict[int, str] = {}  # every finished reply of every round, with its text
    for round_no, flushes in enumerate((3, 10, 40)):
        done, partial, reported = _run_and_kill(db, f"round {round_no}", flushes)
        assert len(done) == 3

        raw = sqlite3.connect(db)  # look before the store recovers anything
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        status, content = raw.execute("SELECT status, content FROM messages WHERE id=?", (partial,)).fetchone()
        raw.close()
        assert status == "streaming"

        for k, mid in enumerate(done):
            survivors[mid] = _finished_text(k)
        with Store(db) as store:
            for mid, text in survivors.items():  # this round's and every earlier round's
                m = store.get_message(mid)
                assert (m.status, m.content, m.stats) == ("complete", text, {"generated_tokens": 40})
            m = store.get_message(partial)
            assert m.status == "interrupted"
            assert m.content == content  # recovery keeps the text as it was
            assert len(m.content) >= reported  # everything reported as written survived
            assert m.content == _partial_text(len(m.content))  # whole pieces, in order, nothing torn
            tree = store.load_tree(m.conversation_id)
            assert [x.id for x in tree.active_path()][-1] == partial
            assert store.db._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert fts_consistent(store)  # the search index agrees with the recovered rows
