"""The user's settings and history are never lost or exposed: a settings file lmdesk cannot parse
is kept aside (and the user told), and every file lmdesk writes is private to the user."""

from __future__ import annotations

import json
import logging
import os
import stat

from lmdesk.config import Settings, app_paths, setup_logging
from lmdesk.core.storage.store import Store
from tests.chat_support import close_window, open_window

BROKEN = (b'{\n  "theme": "dark",\n  "n_ctx": 8192,\n'
          b'  "extra_model_paths": ["/models/mine.gguf"],\n'
          b'  "model_options": {"/models/mine.gguf": {"device": "cpu"}},\n}\n')  # trailing comma


def test_a_broken_settings_file_is_kept_aside_and_reported_in_the_banner(qtbot):
    paths = app_paths().ensure()
    paths.settings_file.write_bytes(BROKEN)
    win = open_window(qtbot)
    banner, shown, kind = win.banner.label.text(), win.banner.isVisible(), win.banner.kind
    close_window(win)
    assert shown and kind == "error"

    aside = sorted(paths.config.glob("settings.json.broken-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes() == BROKEN  # byte for byte
    assert str(aside[0]) in banner
    assert "default" in banner.lower()
    saved = json.loads(paths.settings_file.read_text(encoding="utf-8"))  # a valid file again
    assert saved["theme"] == "system"

    # A second broken file (in the same second) never overwrites the first one kept aside.
    second = BROKEN.replace(b"8192", b"16384")
    paths.settings_file.write_bytes(second)
    win = open_window(qtbot)
    close_window(win)
    kept = {p.read_bytes() for p in paths.config.glob("settings.json.broken-*")}
    assert kept == {BROKEN, second}


def test_a_broken_settings_file_that_cannot_be_moved_aside_is_never_overwritten(qtbot, monkeypatch):
    paths = app_paths().ensure()
    paths.settings_file.write_bytes(BROKEN)
    real_rename = os.rename

    def refuse(src, dst, *args, **kwargs):
        if "broken" in os.fspath(dst):
            raise PermissionError(13, "Permission denied", os.fspath(dst))
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", refuse)
    win = open_window(qtbot)
    banner = win.banner.label.text()
    win.set_theme("light")  # a change the window would normally save at quit
    close_window(win)
    assert paths.settings_file.read_bytes() == BROKEN
    assert not list(paths.config.glob("settings.json.broken-*"))
    assert str(paths.settings_file) in banner


def test_commands_read_a_broken_settings_file_as_defaults_with_one_warning(capsys):
    from lmdesk.cli import main

    paths = app_paths().ensure()
    paths.settings_file.write_bytes(BROKEN)
    assert main(["models"]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(paths.settings_file) in warnings[0]
    assert paths.settings_file.read_bytes() == BROKEN  # a command never moves or rewrites it
    _drop_log_handlers()


def _drop_log_handlers() -> None:
    root = logging.getLogger("lmdesk")
    for h in list(root.handlers):
        if getattr(h, "_lmdesk", False):
            root.removeHandler(h)
            h.close()


def test_history_settings_and_logs_are_private_to_the_user(lmdesk_home):
    old = os.umask(0o022)
    try:
        paths = app_paths().ensure()
        store = Store(paths.database)
        try:
            conv = store.create_conversation("secret")
            store.add_message(conv, None, "user", "my private question")
            setup_logging(paths)
            logging.getLogger("lmdesk.test").warning("a line in the log")
            Settings().save(paths)
            assert paths.database.with_name(paths.database.name + "-wal").exists()
            files = [p for p in lmdesk_home.rglob("*") if p.is_file()]
            folders = [lmdesk_home] + [p for p in lmdesk_home.rglob("*") if p.is_dir()]
            assert {p.name for p in files} >= {paths.database.name, paths.database.name + "-wal",
                                              paths.database.name + "-shm", "settings.json", "lmdesk.log"}
            assert {p: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {p: "0o600" for p in files}
            assert {p: oct(stat.S_IMODE(p.stat().st_mode)) for p in folders} == {p: "0o700" for p in folders}
        finally:
            store.close()
            _drop_log_handlers()
    finally:
        os.umask(old)


def test_a_rotated_log_stays_private(lmdesk_home):
    old = os.umask(0o022)
    try:
        paths = app_paths().ensure()
        setup_logging(paths)
        handler = next(h for h in logging.getLogger("lmdesk").handlers if getattr(h, "_lmdesk", False))
        logging.getLogger("lmdesk.test").warning("before the rollover")
        handler.doRollover()
        logging.getLogger("lmdesk.test").warning("after the rollover")
        logs = sorted(paths.logs.iterdir())
        assert [p.name for p in logs] == ["lmdesk.log", "lmdesk.log.1"]
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in logs)
    finally:
        _drop_log_handlers()
        os.umask(old)


def test_a_data_folder_lmdesk_cannot_write_to_is_not_reported_as_already_running(qtbot, monkeypatch):
    """The lock file cannot be created (here the data folder's place is taken by a file, which
    fails for every user, root included); the message says so and names the folder."""
    from PySide6.QtWidgets import QMessageBox

    from lmdesk.ui.app import run_gui

    paths = app_paths().ensure()
    paths.models.rmdir()
    paths.data.rmdir()
    paths.data.write_text("not a folder")
    said: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text: said.append(text))
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: said.append(text))
    assert run_gui(paths) == 3
    assert len(said) == 1 and "already running" not in said[0]
    assert f"cannot write to its data folder {paths.data}" in said[0]
