"""Rebuilding a history from a damaged SQLite file: every row that can still be read, nothing else.

`Database` refuses a file that fails `PRAGMA quick_check` and sets a byte-for-byte copy aside
(DamagedStoreError). `recover_damaged` then reads that copy table by table, row by row in rowid
order, skipping over the rows on pages SQLite can no longer read, and writes what it got into a new
file with the current schema, which replaces the damaged one. The copy is left untouched (it is
read through a scratch copy, because even a read may checkpoint a WAL file).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lmdesk.core.storage.database import Database, StoreError

log = logging.getLogger("lmdesk.store")

__all__ = ["RecoveryReport", "recover_damaged"]

# Parents before children, so the order of the copy matches the order of creation.
_TABLES = ("conversations", "messages", "presets", "drafts", "kv")
_MAX_SKIPS = 64  # consecutive unreadable spots before a table is given up (the skip doubles each time)


@dataclass(frozen=True)
class RecoveryReport:
    """What a recovery rebuilt: the new history file and how many rows made it."""

    path: Path
    damaged_copy: Path
    conversations: int
    messages: int
    skipped: int  # unreadable spots stepped over (0: every row that was listed could be read)

    def user_text(self) -> str:
        """One line for the user."""
        return (f"Recovered {self.conversations} conversation(s) and {self.messages} message(s) into a new "
                f"history; the damaged file is kept as {self.damaged_copy}")


def _readable_rows(conn: sqlite3.Connection, table: str) -> tuple[list[sqlite3.Row], int]:
    """The rows of `table` that can be read, in rowid order, and how many unreadable spots were skipped."""
    rows: list[sqlite3.Row] = []
    after, skip, skips, failures = None, 1, 0, 0
    while True:
        sql, args = (f"SELECT rowid AS _rowid, * FROM {table} ORDER BY rowid", ()) if after is None else (
            f"SELECT rowid AS _rowid, * FROM {table} WHERE rowid > ? ORDER BY rowid", (after,))
        got_any = False
        try:
            for row in conn.execute(sql, args):
                rows.append(row)
                after, got_any = row["_rowid"], True
            return rows, skips
        except sqlite3.DatabaseError as exc:
            skips += 1
            failures = 0 if got_any else failures + 1
            if failures > _MAX_SKIPS:
                log.warning("recovery gave up on %s after row %s: %s", table, after, exc)
                return rows, skips
            skip = 1 if got_any else skip * 2
            after = (after or 0) + skip


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    try:
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    except sqlite3.DatabaseError:
        return []


def _copy_rows(src: sqlite3.Connection, dst: sqlite3.Connection) -> tuple[dict[str, int], int]:
    counts, skipped = {}, 0
    for table in _TABLES:
        cols = [c for c in _columns(src, table) if c in set(_columns(dst, table))]
        if not cols:
            counts[table] = 0
            continue
        rows, skips = _readable_rows(src, table)
        skipped += skips
        sql = f"INSERT OR IGNORE INTO {table}({','.join(cols)}) VALUES ({','.join('?' * len(cols))})"
        n = 0
        for row in rows:
            try:
                n += dst.execute(sql, tuple(row[c] for c in cols)).rowcount
            except sqlite3.DatabaseError as exc:  # e.g. a NOT NULL column read back garbled
                skipped += 1
                log.warning("recovery dropped a row of %s: %s", table, exc)
        counts[table] = n
    return counts, skipped


def _repair_links(dst: sqlite3.Connection) -> None:
    """Rows whose referenced row was lost: messages of a lost conversation go; a lost parent
    makes a message a root of its own branch; lost selections are cleared."""
    dst.execute("DELETE FROM messages WHERE conversation_id NOT IN (SELECT id FROM conversations)")
    dst.execute("UPDATE messages SET parent_id=NULL WHERE parent_id IS NOT NULL "
                "AND parent_id NOT IN (SELECT id FROM messages)")
    dst.execute("UPDATE messages SET selected_child_id=NULL WHERE selected_child_id IS NOT NULL "
                "AND selected_child_id NOT IN (SELECT id FROM messages)")
    dst.execute("UPDATE conversations SET selected_root_id=NULL WHERE selected_root_id IS NOT NULL "
                "AND selected_root_id NOT IN (SELECT id FROM messages)")


def _scratch_copy(copy: Path, folder: Path) -> Path:
    scratch = folder / "damaged.db"
    shutil.copyfile(copy, scratch)
    wal = copy.with_name(copy.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, scratch.with_name(scratch.name + "-wal"))
    return scratch


def _iter_sidecars(path: Path) -> Iterator[Path]:
    for suffix in ("-wal", "-shm"):
        yield path.with_name(path.name + suffix)


def recover_damaged(path: str | Path, damaged_copy: str | Path) -> RecoveryReport:
    """Build a new history at `path` from the rows of `damaged_copy` that can still be read.

    The damaged file at `path` (and its -wal/-shm) is replaced; `damaged_copy` is not modified.
    Raises StoreError if the new file cannot be written. Takes about as long as reading the file.
    """
    path, damaged_copy = Path(path), Path(damaged_copy)
    new = path.with_name(path.name + ".recovering")
    for p in (new, *_iter_sidecars(new)):
        p.unlink(missing_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".lmdesk-recovery-") as scratch_dir:
            src = sqlite3.connect(_scratch_copy(damaged_copy, Path(scratch_dir)))
            try:
                src.row_factory = sqlite3.Row
                db = Database(new)  # a new, empty history with the current schema
                try:
                    with db.transaction() as dst:
                        dst.execute("PRAGMA defer_foreign_keys=ON")
                        _, skipped = _copy_rows(src, dst)
                        _repair_links(dst)
                        conversations = dst.execute("SELECT count(*) FROM conversations").fetchone()[0]
                        messages = dst.execute("SELECT count(*) FROM messages").fetchone()[0]
                        if db.has_fts:
                            dst.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
                finally:
                    db.close()
            finally:
                src.close()
        for p in _iter_sidecars(path):
            p.unlink(missing_ok=True)
        new.replace(path)
    except OSError as exc:
        raise StoreError(f"Could not write a recovered history next to {path}: {exc.strerror or exc}",
                         f"The damaged file is kept as {damaged_copy}") from exc
    log.warning("recovered %d conversations and %d messages from %s (%d unreadable spots skipped)",
                conversations, messages, damaged_copy, skipped)
    return RecoveryReport(path, damaged_copy, conversations, messages, skipped)
