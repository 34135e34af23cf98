"""The SQLite store of conversations (and presets, drafts): the data that must never be lost.

Durability and threading are those of lmdesk.core.storage.database: WAL, one connection shared
by all threads, calls serialised. Every public method is one short transaction, cheap enough for
the GUI thread. An assistant reply is a row from the moment generation starts (status
`streaming`); a StreamWriter (lmdesk.core.storage.stream_writer) appends its text at least every
second; `recover_interrupted()` at open marks leftovers.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from lmdesk.core.chat.conversation import (
    STATUSES, ConversationInfo, ConversationSettings, ConversationTree, Message, auto_title,
)
from lmdesk.core.storage import export
from lmdesk.core.storage.database import Database, StoreError
from lmdesk.core.storage.library import Drafts, KeyValue, Presets

log = logging.getLogger("lmdesk.store")

__all__ = ["ConversationInfo", "Store", "StoreError"]

_FINAL_STATUSES = set(STATUSES) - {"streaming"}


def _stats_json(stats: object) -> str | None:
    if stats is None:
        return None
    if hasattr(stats, "to_dict"):
        stats = stats.to_dict()
    return json.dumps(stats)


def _message(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"], conversation_id=row["conversation_id"], parent_id=row["parent_id"], role=row["role"],
        content=row["content"], status=row["status"], created_at=row["created_at"], model=row["model"],
        stats=json.loads(row["stats"]) if row["stats"] else None, error=row["error"],
        selected_child_id=row["selected_child_id"],
    )


def _info(row: sqlite3.Row) -> ConversationInfo:
    return ConversationInfo(row["id"], row["title"], row["created_at"], row["updated_at"], row["deleted_at"])


def _fts_query(terms: list[str]) -> str:
    # Each word becomes a quoted prefix term, so user punctuation can never be FTS syntax.
    return " ".join('"' + t.replace('"', '""') + '"*' for t in terms)


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Store:
    """Conversations as message trees in one SQLite file; see the module docstring for guarantees."""

    def __init__(self, path: str | Path, *, now: Callable[[], float] = time.time, recover: bool = True) -> None:
        self.db = Database(path, now=now)
        self.path = self.db.path
        self.presets, self.drafts, self.kv = Presets(self.db), Drafts(self.db), KeyValue(self.db)
        if recover:
            self.recover_interrupted()

    @property
    def has_fts(self) -> bool:
        """Whether this SQLite has FTS5, so message search uses the full-text index."""
        return self.db.has_fts

    def close(self) -> None:
        """Close the connection (a WAL checkpoint happens then); safe to call twice."""
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- conversations ---------------------------------------------------------------------------

    def create_conversation(self, title: str = "", settings: ConversationSettings | None = None) -> int:
        """A new, empty conversation; an empty title is filled from the first user message."""
        now = self.db.now()
        s = json.dumps((settings or ConversationSettings()).to_dict())
        with self.db.transaction() as c:
            return c.execute("INSERT INTO conversations(title, created_at, updated_at, settings) VALUES (?,?,?,?)",
                             (title.strip(), now, now, s)).lastrowid

    def get_conversation(self, conversation_id: int) -> ConversationInfo:
        """One conversation's row (KeyError if there is none)."""
        rows = self.db.query("SELECT * FROM conversations WHERE id=?", (conversation_id,))
        if not rows:
            raise KeyError(f"no conversation {conversation_id}")
        return _info(rows[0])

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        """Set the title (it will no longer follow the first message)."""
        with self.db.transaction() as c:
            c.execute("UPDATE conversations SET title=? WHERE id=?", (title.strip(), conversation_id))

    def delete_conversation(self, conversation_id: int) -> None:
        """Soft delete: hidden from lists until undone or purged."""
        with self.db.transaction() as c:
            c.execute("UPDATE conversations SET deleted_at=? WHERE id=?", (self.db.now(), conversation_id))

    def undo_delete_conversation(self, conversation_id: int) -> None:
        """Bring back a soft-deleted conversation."""
        with self.db.transaction() as c:
            c.execute("UPDATE conversations SET deleted_at=NULL WHERE id=?", (conversation_id,))

    def purge_conversation(self, conversation_id: int) -> None:
        """Delete a conversation and its messages for good."""
        with self.db.transaction() as c:
            # Cut the parent links first: a cascade down a long chain would recurse once per level
            # and hit SQLite's trigger-depth limit.
            c.execute("UPDATE conversations SET selected_root_id=NULL WHERE id=?", (conversation_id,))
            c.execute("UPDATE messages SET parent_id=NULL, selected_child_id=NULL WHERE conversation_id=?",
                      (conversation_id,))
            c.execute("DELETE FROM messages WHERE conversation_id=?", (conversation_id,))
            c.execute("DELETE FROM conversations WHERE id=?", (conversation_id,))

    def purge_deleted(self, older_than: float | None = None) -> int:
        """Purge soft-deleted conversations (deleted before `older_than`, if given); returns how many."""
        rows = self.db.query("SELECT id FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at < ?",
                          (float("inf") if older_than is None else older_than,))
        for r in rows:
            self.purge_conversation(r["id"])
        return len(rows)

    def list_conversations(self, query: str = "", limit: int = 500, deleted: bool = False) -> list[ConversationInfo]:
        """Conversations, most recently active first; `query` words must all match the title or one message."""
        terms = query.split()
        where = "c.deleted_at IS NOT NULL" if deleted else "c.deleted_at IS NULL"
        args: list = []
        if terms:
            title_match = " AND ".join("c.title LIKE ? ESCAPE '\\'" for _ in terms)
            args += [_like(t) for t in terms]
            if self.db.has_fts:
                msg_match = ("c.id IN (SELECT m.conversation_id FROM messages_fts f JOIN messages m ON m.id = f.rowid"
                             " WHERE messages_fts MATCH ?)")
                args.append(_fts_query(terms))
            else:
                msg_match = ("c.id IN (SELECT conversation_id FROM messages WHERE "
                             + " AND ".join("content LIKE ? ESCAPE '\\'" for _ in terms) + ")")
                args += [_like(t) for t in terms]
            where += f" AND (({title_match}) OR {msg_match})"
        rows = self.db.query(f"SELECT * FROM conversations c WHERE {where} ORDER BY c.updated_at DESC, c.id DESC LIMIT ?",
                          (*args, limit))
        return [_info(r) for r in rows]

    def get_settings(self, conversation_id: int) -> ConversationSettings:
        """The conversation's generation settings."""
        rows = self.db.query("SELECT settings FROM conversations WHERE id=?", (conversation_id,))
        if not rows:
            raise KeyError(f"no conversation {conversation_id}")
        return ConversationSettings.from_dict(json.loads(rows[0]["settings"] or "{}"))

    def set_settings(self, conversation_id: int, settings: ConversationSettings) -> None:
        """Replace the conversation's generation settings."""
        with self.db.transaction() as c:
            c.execute("UPDATE conversations SET settings=? WHERE id=?", (json.dumps(settings.to_dict()), conversation_id))

    # -- messages --------------------------------------------------------------------------------

    def add_message(self, conversation_id: int, parent_id: int | None, role: str, content: str,
                    status: str = "complete", model: str | None = None) -> int:
        """Append a message under `parent_id` (None: a new root) and select it; returns its id."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = self.db.now()
        with self.db.transaction() as c:
            mid = c.execute(
                "INSERT INTO messages(conversation_id, parent_id, role, content, status, created_at, model)"
                " VALUES (?,?,?,?,?,?,?)", (conversation_id, parent_id, role, content, status, now, model)).lastrowid
            self._select(c, mid)
            c.execute("UPDATE conversations SET updated_at=? WHERE id=?", (now, conversation_id))
            if role == "user" and content.strip():
                c.execute("UPDATE conversations SET title=? WHERE id=? AND title=''", (auto_title(content), conversation_id))
            return mid

    def begin_assistant(self, parent_id: int | None, model: str | None = None, conversation_id: int | None = None) -> int:
        """Create the row of a reply that is about to stream (status `streaming`); returns its id."""
        if conversation_id is None:
            if parent_id is None:
                raise ValueError("a reply without a parent needs its conversation_id")
            conversation_id = self.get_message(parent_id).conversation_id
        return self.add_message(conversation_id, parent_id, "assistant", "", "streaming", model)

    def append_stream(self, message_id: int, text: str) -> None:
        """Append text to a streaming reply: one short UPDATE (the search index waits for the end).

        An `interrupted` row still accepts text: a second lmdesk opening the same file marks the
        first one's live reply interrupted, and the first must keep saving it all the same.
        """
        if not text:
            return
        with self.db.transaction() as c:
            c.execute("UPDATE messages SET content = content || ? WHERE id=? AND status IN ('streaming', 'interrupted')",
                      (text, message_id))

    def finish_assistant(self, message_id: int, status: str = "complete", stats: object = None,
                         error: str | None = None, append: str = "") -> None:
        """Mark a reply complete / stopped / error / interrupted, with its stats (a dict or GenerationStats)."""
        if status not in _FINAL_STATUSES:
            raise ValueError(f"a finished reply cannot have status {status!r}")
        now = self.db.now()
        with self.db.transaction() as c:
            c.execute("UPDATE messages SET content = content || ?, status=?, stats=?, error=? WHERE id=?",
                      (append, status, _stats_json(stats), error, message_id))
            c.execute("UPDATE conversations SET updated_at=? WHERE id=(SELECT conversation_id FROM messages WHERE id=?)",
                      (now, message_id))

    def set_content(self, message_id: int, content: str) -> None:
        """Replace a message's text in place (prefer edit_and_resend, which keeps the old version)."""
        with self.db.transaction() as c:
            c.execute("UPDATE messages SET content=? WHERE id=?", (content, message_id))

    def recover_interrupted(self) -> int:
        """Mark replies left `streaming` by a crash as `interrupted`, keeping their text; returns how many."""
        with self.db.transaction() as c:
            n = c.execute("UPDATE messages SET status='interrupted' WHERE status='streaming'").rowcount
        if n:
            log.info("marked %d unfinished replies as interrupted", n)
        return n

    def get_message(self, message_id: int) -> Message:
        """One message (KeyError if there is none)."""
        rows = self.db.query("SELECT * FROM messages WHERE id=?", (message_id,))
        if not rows:
            raise KeyError(f"no message {message_id}")
        return _message(rows[0])

    def load_tree(self, conversation_id: int) -> ConversationTree:
        """The whole message tree of a conversation (one indexed query)."""
        with self.db.snapshot():
            conv = self.db.query("SELECT selected_root_id FROM conversations WHERE id=?", (conversation_id,))
            if not conv:
                raise KeyError(f"no conversation {conversation_id}")
            rows = self.db.query("SELECT * FROM messages WHERE conversation_id=? ORDER BY id", (conversation_id,))
        # Ids grow with creation (import and fork insert parents first), so parents come first.
        return ConversationTree.from_messages(conversation_id, map(_message, rows), conv[0]["selected_root_id"])

    def _select(self, c: sqlite3.Connection, message_id: int) -> None:
        """Persist the choices that put `message_id` on the active path (one query up the ancestors)."""
        chain = c.execute(
            "WITH RECURSIVE up(id, parent_id, conversation_id) AS ("
            " SELECT id, parent_id, conversation_id FROM messages WHERE id=?"
            " UNION ALL SELECT m.id, m.parent_id, m.conversation_id FROM messages m JOIN up ON m.id = up.parent_id)"
            " SELECT up.id, up.parent_id, up.conversation_id, p.selected_child_id AS chosen"
            " FROM up LEFT JOIN messages p ON p.id = up.parent_id", (message_id,)).fetchall()
        for row in chain:
            if row["parent_id"] is None:
                c.execute("UPDATE conversations SET selected_root_id=? WHERE id=? AND selected_root_id IS NOT ?",
                          (row["id"], row["conversation_id"], row["id"]))
            elif row["chosen"] != row["id"]:
                c.execute("UPDATE messages SET selected_child_id=? WHERE id=?", (row["id"], row["parent_id"]))

    def select_message(self, message_id: int) -> None:
        """Switch to a version (or branch): `message_id` and its ancestors become the active path."""
        with self.db.transaction() as c:
            self._select(c, message_id)

    def regenerate(self, assistant_id: int, model: str | None = None) -> int:
        """A new streaming version of a reply (sibling of `assistant_id`), selected; returns its id."""
        old = self.get_message(assistant_id)
        if old.role != "assistant":
            raise ValueError("only an assistant reply can be regenerated")
        return self.begin_assistant(old.parent_id, model, old.conversation_id)

    def edit_and_resend(self, user_id: int, content: str) -> int:
        """A new version of a user message (a new branch), selected; returns its id (then begin_assistant)."""
        old = self.get_message(user_id)
        if old.role != "user":
            raise ValueError("only a user message can be edited and resent")
        return self.add_message(old.conversation_id, old.parent_id, "user", content)

    def delete_message(self, message_id: int) -> int:
        """Delete a message and everything below it; returns how many rows went."""
        with self.db.transaction() as c:
            c.execute("CREATE TEMP TABLE IF NOT EXISTS doomed(id INTEGER PRIMARY KEY)")
            c.execute("DELETE FROM doomed")
            c.execute("INSERT INTO doomed WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL"
                      " SELECT m.id FROM messages m JOIN sub ON m.parent_id = sub.id) SELECT id FROM sub", (message_id,))
            # Detach first, so no cascade recurses down a long chain (see purge_conversation).
            c.execute("UPDATE messages SET parent_id=NULL, selected_child_id=NULL WHERE id IN (SELECT id FROM doomed)")
            return c.execute("DELETE FROM messages WHERE id IN (SELECT id FROM doomed)").rowcount

    def fork(self, message_id: int, title: str | None = None) -> int:
        """A new conversation holding a copy of the path up to `message_id`; returns its id."""
        doc = export.export_json(self, self.get_message(message_id).conversation_id, up_to=message_id)
        doc["title"] = title if title is not None else f"{doc['title']} (fork)".strip()
        doc["created_at"] = self.db.now()
        return export.import_json(self.db, doc)

    def export_markdown(self, conversation_id: int) -> str:
        """The active path as a Markdown document."""
        return export.export_markdown(self, conversation_id)

    def export_json(self, conversation_id: int) -> dict:
        """The whole tree as a JSON-ready dict with a format version (see lmdesk.core.storage.export)."""
        return export.export_json(self, conversation_id)

    def import_json(self, data: dict | str) -> int:
        """Import an export_json document (dict or JSON text) as a new conversation; returns its id."""
        return export.import_json(self.db, data)
