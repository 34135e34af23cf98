"""The SQLite file under the store: opening it safely, schema migrations, short transactions.

Durability: WAL journal with synchronous=NORMAL — a committed transaction survives the process
being killed at any moment (only a power cut may lose the last commits), and a crash never
corrupts the file.

Threading: one connection opened with check_same_thread=False and guarded by an RLock, so any
thread may use it; calls are serialised. Chosen over a connection per thread because the GUI
thread does nearly all the writing and one connection keeps "one writer" true by construction.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lmdesk.core.errors import LmdeskError
from lmdesk.core.storage.migrations import SCHEMA_VERSION, migrate

log = logging.getLogger("lmdesk.store")

__all__ = ["DamagedStoreError", "Database", "StoreError"]


class StoreError(LmdeskError):
    """The conversation database could not be opened, read or written."""


class DamagedStoreError(StoreError):
    """The history file failed SQLite's integrity check at open. Nothing was written to it: a copy
    (with its -wal) was set aside as `copy` first; `lmdesk.core.storage.recovery.recover_damaged`
    builds a new history from what can still be read."""

    def __init__(self, path: Path, copy: Path, problem: str) -> None:
        super().__init__(f"The history database {path} is damaged ({problem}); a copy is kept as {copy}",
                         "Recover what can still be read into a new history")
        self.path, self.copy, self.problem = path, copy, problem


_SQLITE_READONLY = 8


def is_read_only(exc: sqlite3.Error) -> bool:
    """Whether SQLite refused a write because the file (or its folder, or the connection) is read-only."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF == _SQLITE_READONLY
    return "readonly" in str(exc)


def read_only_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """The error for a history file SQLite may read but not write."""
    return StoreError(f"The history database {path} is read-only ({exc})",
                      "Make the file and its folder writable by you, or set LMDESK_HOME to a writable folder")


def damaged_copy_name(path: Path, when: float) -> Path:
    """Where a damaged history file is set aside: `lmdesk.db.damaged-20250102-030405` next to it."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    copy = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while copy.exists():
        n += 1
        copy = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    return copy


def _integrity_problem(conn: sqlite3.Connection) -> str | None:
    """None when `PRAGMA quick_check` passes, else its first complaint (one line). Linear in the
    file size; a few milliseconds for a normal history."""
    try:
        rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and not is_corrupt(exc):
            raise  # e.g. locked: not a verdict on the file
        return str(exc)
    first = str(rows[0][0]) if rows else "ok"
    if first == "ok":
        return None
    lines = [ln for ln in first.splitlines() if ln.strip() and not ln.startswith("***")]  # skip "*** in database main ***"
    return lines[0] if lines else first.splitlines()[0]


def is_corrupt(exc: sqlite3.Error) -> bool:
    """SQLITE_CORRUPT or SQLITE_NOTADB: the file's pages are not a valid database."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (11, 26)
    return "malformed" in str(exc) or "not a database" in str(exc)


def _set_aside(path: Path, when: float) -> Path:
    """Copy the database file and its -wal (byte for byte) to a new `.damaged-<time>` name."""
    copy = damaged_copy_name(path, when)
    shutil.copyfile(path, copy)
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
    for p in (copy, copy.with_name(copy.name + "-wal")):
        _make_private(p)
    return copy


def _create_private(path: Path) -> None:
    """Create the database file (and missing folders) readable by the user only: chat history is
    private. SQLite gives the -wal and -shm files the same mode as the database file."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        _make_private(path)


def _make_private(path: Path) -> None:
    """Drop group/other permissions of an existing file this user owns."""
    try:
        st = path.lstat()
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 and (not hasattr(os, "getuid") or st.st_uid == os.getuid()):
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not make %s private: %s", path, exc)


class Database:
    """One SQLite file in WAL mode, migrated to the current schema, with serialised transactions."""

    def __init__(self, path: str | Path, *, now: Callable[[], float] = time.time, check: bool = True) -> None:
        self.path = Path(path)
        self.now = now  # the wall clock for created_at / updated_at columns (injectable for tests)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        try:
            _create_private(self.path)
            self._conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
            self._conn.row_factory = sqlite3.Row
            if check:
                self._check_integrity()
            self._setup()
        except (sqlite3.Error, StoreError) as exc:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if isinstance(exc, StoreError):
                raise
            if is_read_only(exc):
                raise read_only_error(self.path, exc) from exc
            raise StoreError(f"Cannot open the history database {self.path}: {exc}",
                             "Move the file aside to start a new history") from exc
        except OSError as exc:
            raise StoreError(f"Cannot create the history database {self.path}: {exc.strerror or exc}",
                             "Check that the folder exists and is writable") from exc

    def _check_integrity(self) -> None:
        """Refuse a damaged file before anything writes to it (WAL switch, migrations, the
        interrupted-reply scan): set a copy aside and raise DamagedStoreError."""
        problem = _integrity_problem(self._conn)
        if problem is None:
            return
        try:
            copy = _set_aside(self.path, self.now())
        except OSError as exc:
            raise StoreError(f"The history database {self.path} is damaged ({problem}) and no copy could be "
                             f"set aside: {exc.strerror or exc}", "Copy the file somewhere safe by hand") from exc
        log.error("history database %s failed its integrity check (%s); copy kept as %s", self.path, problem, copy)
        raise DamagedStoreError(self.path, copy, problem)

    def _setup(self) -> None:
        c = self._conn
        mode = c.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("SQLite refused WAL mode (%s) for %s", mode, self.path)
        for suffix in ("-wal", "-shm"):  # SQLite gives them the database's mode; older files may differ
            _make_private(self.path.with_name(self.path.name + suffix))
        c.execute("PRAGMA synchronous=NORMAL")
        c.execute("PRAGMA foreign_keys=ON")
        c.execute("PRAGMA busy_timeout=5000")
        version = c.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"The history database {self.path} was written by a newer lmdesk "
                             f"(schema v{version}, this one knows v{SCHEMA_VERSION})", "Update lmdesk")
        migrate(c)
        self.has_fts = c.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='messages_fts'").fetchone() is not None

    def close(self) -> None:
        """Close the connection (a WAL checkpoint happens then); safe to call twice."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; sqlite errors become StoreError for the banner."""
        with self._lock:
            if self._conn is None:
                raise StoreError("The history database is closed")
            c = self._conn
            try:
                c.execute("BEGIN IMMEDIATE")
                try:
                    yield c
                except BaseException:
                    c.rollback()
                    raise
                c.commit()
            except sqlite3.Error as exc:
                log.exception("store write failed")
                if is_read_only(exc):
                    raise read_only_error(self.path, exc) from exc
                raise StoreError(f"Could not save to the history database: {exc}",
                                 "Check that the disk is not full") from exc

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        """The rows of one read statement; sqlite errors become StoreError."""
        with self._lock:
            if self._conn is None:
                raise StoreError("The history database is closed")
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"Could not read the history database: {exc}") from exc

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Hold the connection for several reads in a row, so no write from another thread lands between them."""
        with self._lock:
            yield
