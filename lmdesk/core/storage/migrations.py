"""The store's schema history: migration N brings a database from user_version N-1 to N.

Never edit a migration that has shipped; append a new one. Each runs in one transaction together
with its `PRAGMA user_version` bump, so a crash mid-migration leaves the previous version intact.
tests/test_store.py builds a v1 database by hand and checks every later step keeps its data.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

log = logging.getLogger("lmdesk.store")

# v1: conversations and the message tree.
_V1 = """
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    selected_root_id INTEGER REFERENCES messages(id) ON DELETE SET NULL,
    deleted_at REAL
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'complete',
    created_at REAL NOT NULL,
    model TEXT,
    stats TEXT,
    error TEXT,
    selected_child_id INTEGER REFERENCES messages(id) ON DELETE SET NULL
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
CREATE INDEX messages_by_parent ON messages(parent_id);
CREATE INDEX conversations_by_recent ON conversations(updated_at);
"""

# v2: presets (personas), drafts for the Write pane, a small key-value table for app state,
# and a partial index so the start-up scan for leftover streaming rows costs nothing.
_V2 = """
CREATE TABLE presets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    settings TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE drafts (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    deleted_at REAL
);
CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT);
CREATE INDEX messages_streaming ON messages(id) WHERE status = 'streaming';
CREATE INDEX messages_by_selected_child ON messages(selected_child_id);
CREATE INDEX conversations_by_root ON conversations(selected_root_id);
"""

# v3: full-text search over message text. External-content FTS5 keyed by the INTEGER PRIMARY KEY
# (stable across VACUUM). Streaming rows are indexed only once they finish, so the once-a-second
# flush of a long reply does not re-tokenise it every time.
_V3_FTS = """
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages WHEN new.status != 'streaming' BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages WHEN old.status != 'streaming' BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER messages_fts_au AFTER UPDATE OF content, status ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content)
        SELECT 'delete', old.id, old.content WHERE old.status != 'streaming';
    INSERT INTO messages_fts(rowid, content)
        SELECT new.id, new.content WHERE new.status != 'streaming';
END;
INSERT INTO messages_fts(rowid, content) SELECT id, content FROM messages WHERE status != 'streaming';
"""


def fts5_available(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite build has FTS5 (if not, search falls back to LIKE)."""
    try:
        conn.execute("CREATE VIRTUAL TABLE temp._fts5_probe USING fts5(x)")
        conn.execute("DROP TABLE temp._fts5_probe")
        return True
    except sqlite3.OperationalError:
        return False


def _v3(conn: sqlite3.Connection) -> str:
    if fts5_available(conn):
        return _V3_FTS
    log.warning("SQLite has no FTS5: conversation search will use LIKE")
    return ""


# Each entry gives the SQL of one step (a callable when it depends on the SQLite build).
MIGRATIONS: list[str | Callable[[sqlite3.Connection], str]] = [_V1, _V2, _v3]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the missing migrations in order, each atomically; returns the version reached."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    while version < target:
        step = MIGRATIONS[version]
        sql = step(conn) if callable(step) else step
        log.info("migrating the store from schema v%d to v%d", version, version + 1)
        # executescript commits any open transaction first, so BEGIN/COMMIT are spelled out here:
        # the schema change and the version bump land together or not at all.
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version + 1};\nCOMMIT;")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        version += 1
    return version
