"""Export a conversation to Markdown (the active path) or JSON (the whole tree), and import JSON.

JSON format "lmdesk.conversation", version 1: messages listed parents first, each with a `ref`
(its index in the list) and its parent's ref, so the file never carries database ids and an
export → import → export round trip gives the same document (apart from `updated_at`).
"""

from __future__ import annotations

import json
from typing import Protocol

from lmdesk.core.chat.conversation import (
    ROLES, STATUSES, ConversationInfo, ConversationSettings, ConversationTree,
)
from lmdesk.core.storage.database import Database, StoreError

FORMAT = "lmdesk.conversation"
FORMAT_VERSION = 1
_ROLE_HEADINGS = {"user": "User", "assistant": "Assistant", "system": "System"}


class ConversationSource(Protocol):
    """What an export reads: the reading methods of lmdesk.core.storage.store.Store."""

    def get_conversation(self, conversation_id: int) -> ConversationInfo: ...

    def get_settings(self, conversation_id: int) -> ConversationSettings: ...

    def load_tree(self, conversation_id: int) -> ConversationTree: ...


def export_json(store: ConversationSource, conversation_id: int, up_to: int | None = None) -> dict:
    """The whole tree of a conversation as a JSON-ready dict (only the path to `up_to`, if given)."""
    info = store.get_conversation(conversation_id)
    tree = store.load_tree(conversation_id)
    messages = list(tree) if up_to is None else tree.path_to(up_to)
    ref = {m.id: i for i, m in enumerate(messages)}
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "title": info.title,
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "settings": store.get_settings(conversation_id).to_dict(),
        "selected_root": ref.get(tree.selected_root_id),
        "messages": [
            {
                "ref": ref[m.id],
                "parent": ref[m.parent_id] if m.parent_id is not None else None,
                "role": m.role,
                "content": m.content,
                "status": m.status,
                "created_at": m.created_at,
                "model": m.model,
                "stats": m.stats,
                "error": m.error,
                "selected_child": ref.get(m.selected_child_id),
            }
            for m in messages
        ],
    }


def export_markdown(store: ConversationSource, conversation_id: int) -> str:
    """The active path as Markdown: a heading per turn, non-complete replies marked."""
    info = store.get_conversation(conversation_id)
    settings = store.get_settings(conversation_id)
    parts = [f"# {info.title or 'Untitled chat'}", ""]
    if settings.system_prompt.strip():
        parts += ["> **System prompt:** " + settings.system_prompt.strip().replace("\n", "\n> "), ""]
    for m in store.load_tree(conversation_id).active_path():
        heading = _ROLE_HEADINGS.get(m.role, m.role.title())
        if m.role == "assistant" and m.model:
            heading += f" ({m.model})"
        parts += [f"## {heading}", "", m.content.rstrip("\n"), ""]
        if m.status != "complete":
            note = f"*[{m.status}"
            note += f": {m.error}]*" if m.error else "]*"
            parts += [note, ""]
    return "\n".join(parts)


def _bad(why: str) -> StoreError:
    return StoreError(f"Not an lmdesk conversation export: {why}", "Choose a file made by Export → JSON")


def _check(data: object) -> list[dict]:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _bad("missing format marker")
    if not isinstance(data.get("version"), int) or data["version"] > FORMAT_VERSION:
        raise _bad(f"unsupported version {data.get('version')!r}")
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise _bad("no message list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("ref") != i:
            raise _bad(f"message {i} is malformed")
        if m.get("role") not in ROLES or m.get("status", "complete") not in STATUSES:
            raise _bad(f"message {i} has an unknown role or status")
        if not isinstance(m.get("content"), str):
            raise _bad(f"message {i} has no text")
        parent = m.get("parent")
        if parent is not None and not (isinstance(parent, int) and 0 <= parent < i):
            raise _bad(f"message {i} names a parent that does not come before it")
    return messages


def import_json(db: Database, data: dict | str) -> int:
    """Add an exported conversation as a new one (all or nothing); returns its id."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise _bad(f"invalid JSON ({exc})") from exc
    messages = _check(data)
    now = db.now()
    settings = ConversationSettings.from_dict(data.get("settings"))
    with db.transaction() as c:
        cid = c.execute(
            "INSERT INTO conversations(title, created_at, updated_at, settings) VALUES (?,?,?,?)",
            (str(data.get("title") or ""), float(data.get("created_at") or now), now, json.dumps(settings.to_dict())),
        ).lastrowid
        ids: list[int] = []
        for m in messages:
            status = m.get("status", "complete")
            status = "interrupted" if status == "streaming" else status  # nothing is writing to it here
            stats = m.get("stats")
            ids.append(c.execute(
                "INSERT INTO messages(conversation_id, parent_id, role, content, status, created_at, model, stats, error)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (cid, ids[m["parent"]] if m.get("parent") is not None else None, m["role"], m["content"], status,
                 float(m.get("created_at") or now), m.get("model"), json.dumps(stats) if stats is not None else None,
                 m.get("error")),
            ).lastrowid)
        for m, mid in zip(messages, ids, strict=True):
            child = m.get("selected_child")
            if isinstance(child, int) and 0 <= child < len(ids) and messages[child].get("parent") == m["ref"]:
                c.execute("UPDATE messages SET selected_child_id=? WHERE id=?", (ids[child], mid))
        root = data.get("selected_root")
        if isinstance(root, int) and 0 <= root < len(ids) and messages[root].get("parent") is None:
            c.execute("UPDATE conversations SET selected_root_id=? WHERE id=?", (ids[root], cid))
    return cid
