"""The smaller tables of the store: presets (personas), drafts (the Write pane), and app key-values.

Reached as `store.presets`, `store.drafts`, `store.kv`; each call is one short transaction on the
store's database (see lmdesk.core.storage.database for the durability and threading rules).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from lmdesk.core.chat.conversation import ConversationSettings
from lmdesk.core.storage.database import Database


@dataclass
class Preset:
    """A named set of conversation settings (a persona: system prompt + sampling)."""

    id: int
    name: str
    settings: ConversationSettings
    created_at: float
    updated_at: float


@dataclass
class Draft:
    """A document of the Write pane."""

    id: int
    title: str
    text: str
    created_at: float
    updated_at: float
    deleted_at: float | None = None


class Presets:
    """CRUD for presets; names are unique."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _row(self, r) -> Preset:
        return Preset(r["id"], r["name"], ConversationSettings.from_dict(json.loads(r["settings"] or "{}")),
                      r["created_at"], r["updated_at"])

    def list(self) -> list[Preset]:
        """All presets by name."""
        return [self._row(r) for r in self._db.query("SELECT * FROM presets ORDER BY name COLLATE NOCASE, id")]

    def get(self, preset_id: int) -> Preset:
        """One preset (KeyError if absent)."""
        rows = self._db.query("SELECT * FROM presets WHERE id=?", (preset_id,))
        if not rows:
            raise KeyError(f"no preset {preset_id}")
        return self._row(rows[0])

    def save(self, name: str, settings: ConversationSettings) -> int:
        """Create the preset, or overwrite the settings of the one with this name; returns its id."""
        name = name.strip()
        if not name:
            raise ValueError("a preset needs a name")
        now = self._db.now()
        with self._db.transaction() as c:
            c.execute("INSERT INTO presets(name, settings, created_at, updated_at) VALUES (?,?,?,?)"
                      " ON CONFLICT(name) DO UPDATE SET settings=excluded.settings, updated_at=excluded.updated_at",
                      (name, json.dumps(settings.to_dict()), now, now))
            return c.execute("SELECT id FROM presets WHERE name=?", (name,)).fetchone()[0]

    def rename(self, preset_id: int, name: str) -> None:
        """Rename a preset (StoreError if the name is taken)."""
        with self._db.transaction() as c:
            c.execute("UPDATE presets SET name=?, updated_at=? WHERE id=?", (name.strip(), self._db.now(), preset_id))

    def delete(self, preset_id: int) -> None:
        """Delete a preset (conversations keep the settings they copied from it)."""
        with self._db.transaction() as c:
            c.execute("DELETE FROM presets WHERE id=?", (preset_id,))


class Drafts:
    """CRUD for Write-pane drafts, with soft delete and undo."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def _row(r) -> Draft:
        return Draft(r["id"], r["title"], r["text"], r["created_at"], r["updated_at"], r["deleted_at"])

    def create(self, title: str = "", text: str = "") -> int:
        """A new draft; returns its id."""
        now = self._db.now()
        with self._db.transaction() as c:
            return c.execute("INSERT INTO drafts(title, text, created_at, updated_at) VALUES (?,?,?,?)",
                             (title, text, now, now)).lastrowid

    def get(self, draft_id: int) -> Draft:
        """One draft (KeyError if absent)."""
        rows = self._db.query("SELECT * FROM drafts WHERE id=?", (draft_id,))
        if not rows:
            raise KeyError(f"no draft {draft_id}")
        return self._row(rows[0])

    def update(self, draft_id: int, title: str | None = None, text: str | None = None) -> None:
        """Change the title and/or text."""
        with self._db.transaction() as c:
            c.execute("UPDATE drafts SET title=COALESCE(?, title), text=COALESCE(?, text), updated_at=? WHERE id=?",
                      (title, text, self._db.now(), draft_id))

    def list(self, deleted: bool = False) -> list[Draft]:
        """Drafts, most recently edited first (the soft-deleted ones with `deleted`)."""
        cond = "deleted_at IS NOT NULL" if deleted else "deleted_at IS NULL"
        return [self._row(r) for r in self._db.query(f"SELECT * FROM drafts WHERE {cond} ORDER BY updated_at DESC, id DESC")]

    def delete(self, draft_id: int) -> None:
        """Soft delete (undo with `undo_delete`)."""
        with self._db.transaction() as c:
            c.execute("UPDATE drafts SET deleted_at=? WHERE id=?", (self._db.now(), draft_id))

    def undo_delete(self, draft_id: int) -> None:
        """Bring a soft-deleted draft back."""
        with self._db.transaction() as c:
            c.execute("UPDATE drafts SET deleted_at=NULL WHERE id=?", (draft_id,))

    def purge(self, draft_id: int) -> None:
        """Delete a draft for good."""
        with self._db.transaction() as c:
            c.execute("DELETE FROM drafts WHERE id=?", (draft_id,))


class KeyValue:
    """Small JSON values of app state (e.g. the last open conversation)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, key: str, default: object = None) -> object:
        """The stored value, or `default`."""
        rows = self._db.query("SELECT value FROM kv WHERE key=?", (key,))
        return json.loads(rows[0]["value"]) if rows else default

    def set(self, key: str, value: object) -> None:
        """Store a JSON-serialisable value."""
        with self._db.transaction() as c:
            c.execute("INSERT INTO kv(key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                      (key, json.dumps(value)))
