"""A damaged or read-only history file is never used silently.

Damage is made for real: a history with many conversations is written and closed, then pages in
the middle of the file are overwritten with garbage (the 100-byte header and the first pages,
which hold the schema, are kept).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lmdesk.core.storage import database as database_module
from lmdesk.core.storage.database import DamagedStoreError, StoreError
from lmdesk.core.storage.recovery import recover_damaged
from lmdesk.core.storage.store import Store

N_CONVERSATIONS = 60


def _write_history(path: Path) -> None:
    with Store(path) as s:
        for i in range(N_CONVERSATIONS):
            cid = s.create_conversation(f"conversation {i}")
            u = s.add_message(cid, None, "user", f"question {i} " + "q" * 1500)
            s.add_message(cid, u, "assistant", f"answer {i} " + "a" * 1500)
    assert not path.with_name(path.name + "-wal").exists()  # checkpointed on close: all in the file


def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    pages = len(data) // page
    first = pages // 2
    for p in range(first, first + 3):
        data[p * page:(p + 1) * page] = bytes((p * 37 + k * 11) % 251 for k in range(page))
    path.write_bytes(bytes(data))


@pytest.fixture
def damaged(tmp_path) -> Path:
    path = tmp_path / "lmdesk.db"
    _write_history(path)
    _damage(path)
    return path


def test_a_damaged_history_is_refused_and_copied_aside_byte_for_byte(damaged):
    before = damaged.read_bytes()
    with pytest.raises(DamagedStoreError) as info:
        Store(damaged)
    err = info.value
    assert err.copy.exists() and err.copy.name.startswith("lmdesk.db.damaged-")
    assert err.copy.read_bytes() == before
    assert str(err.copy) in err.user_text() and "\n" not in err.user_text()
    assert "damaged" in err.message and err.fix


def test_recovery_builds_a_sound_history_from_what_can_be_read(damaged):
    with pytest.raises(DamagedStoreError) as info:
        Store(damaged)
    copy = info.value.copy
    copy_bytes = copy.read_bytes()
    report = recover_damaged(damaged, copy)
    assert copy.read_bytes() == copy_bytes  # the damaged copy is kept as it was
    assert 0 < report.conversations <= N_CONVERSATIONS
    assert report.messages > 0
    assert f"{report.conversations} conversation" in report.user_text()
    assert str(copy) in report.user_text()
    raw = sqlite3.connect(damaged)
    assert raw.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
    raw.close()
    with Store(damaged) as s:  # opens normally now, and is usable
        convs = s.list_conversations(limit=1000)
        assert len(convs) == report.conversations
        tree = s.load_tree(convs[0].id)
        assert tree is not None
        s.create_conversation("after recovery")


def test_a_read_only_history_says_so_not_disk_full(tmp_path):
    path = tmp_path / "lmdesk.db"
    s = Store(path)
    s.db._conn.execute("PRAGMA query_only=ON")  # SQLite's own read-only refusal; root ignores chmod
    with pytest.raises(StoreError) as info:
        s.create_conversation("x")
    s.close()
    text = info.value.user_text()
    assert f"The history database {path} is read-only" in text
    assert "disk is not full" not in text


def test_opening_a_read_only_history_says_so(tmp_path, monkeypatch):
    path = tmp_path / "lmdesk.db"
    _write_history(path)
    real_connect = sqlite3.connect

    def read_only(target, *args, **kwargs):
        return real_connect(f"file:{target}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(database_module.sqlite3, "connect", read_only)
    with Store(path, recover=False) as s:  # reading still works
        assert len(s.list_conversations()) == N_CONVERSATIONS
        with pytest.raises(StoreError) as info:
            s.create_conversation("x")
    assert "is read-only" in info.value.user_text()
    assert "disk is not full" not in info.value.user_text()
    # A read-only file that is not in WAL mode yet fails at open, with the same message.
    fresh = tmp_path / "fresh.db"
    real_connect(fresh).execute("CREATE TABLE t(x)").connection.close()
    with pytest.raises(StoreError) as info:
        Store(fresh)
    assert f"The history database {fresh} is read-only" in info.value.user_text()
    assert "Move the file aside" not in info.value.user_text()


# -- the start-up dialogs -----------------------------------------------------------------------


def _choose(monkeypatch, label: str) -> list[str]:
    """Make every custom-button QMessageBox answer `label`; static dialogs are recorded instead."""
    from PySide6.QtWidgets import QMessageBox

    asked: list[str] = []

    def exec_(box):
        asked.append(box.text())
        next(b for b in box.buttons() if b.text() == label).click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", exec_)
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: asked.append(text))
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text: asked.append(text))
    return asked


def test_gui_recover_rebuilds_the_history_and_says_how_much(qtbot, monkeypatch):
    from lmdesk.config import app_paths
    from lmdesk.ui.app import build_window, recover_history
    from tests.chat_support import close_window

    paths = app_paths().ensure()
    _write_history(paths.database)
    _damage(paths.database)
    with pytest.raises(DamagedStoreError) as info:
        build_window(paths)
    asked = _choose(monkeypatch, "Recover")
    window = recover_history(paths, info.value)
    try:
        assert window is not None
        assert len(asked) == 1 and "damaged" in asked[0] and info.value.copy.name in asked[0]
        assert "Recovered" in window.banner.label.text() and info.value.copy.name in window.banner.label.text()
        assert len(window.store.list_conversations(limit=1000)) > 0
    finally:
        close_window(window)


def test_gui_quit_leaves_the_damaged_file_alone(qtbot, monkeypatch):
    from lmdesk.config import app_paths
    from lmdesk.ui.app import run_gui

    paths = app_paths().ensure()
    _write_history(paths.database)
    _damage(paths.database)
    before = paths.database.read_bytes()
    asked = _choose(monkeypatch, "Quit")
    assert run_gui(paths) == 3
    assert len(asked) == 1 and "Recover what can still be read" in asked[0]
    copies = [c for c in paths.database.parent.glob("*.damaged-*") if not c.name.endswith("-wal")]
    assert len(copies) == 1 and copies[0].read_bytes() == before


def test_gui_start_says_when_the_data_folder_is_a_file(qtbot, monkeypatch, capsys):
    from lmdesk.cli import main
    from lmdesk.config import app_paths

    paths = app_paths()
    paths.data.parent.mkdir(parents=True, exist_ok=True)
    paths.data.write_text("not a folder")
    asked = _choose(monkeypatch, "Quit")
    assert main([]) != 0
    assert len(asked) == 1 and "cannot create its folder" in asked[0] and str(paths.data) in asked[0]
    assert "cannot create lmdesk's folders" in capsys.readouterr().err
