"""The SQLite store, on real files: durability set-up, migrations, streaming, search, export/import."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from lmdesk.config import app_paths
from lmdesk.core.chat.conversation import ConversationSettings
from lmdesk.core.stats import GenerationStats
from lmdesk.core.storage.store import Store, StoreError
from lmdesk.core.storage.stream_writer import StreamWriter
from lmdesk.core.storage.migrations import SCHEMA_VERSION


class Clock:
    """A hand-driven clock for time-based flushing without sleeping."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def db(tmp_path):
    return tmp_path / "store.sqlite3"


@pytest.fixture
def store(db):
    s = Store(db)
    yield s
    s.close()


def _chat(store: Store, title: str = "") -> tuple[int, int, int]:
    """A conversation with one user message and one finished reply."""
    cid = store.create_conversation(title)
    u = store.add_message(cid, None, "user", "How do I sort a list in Python?")
    a = store.begin_assistant(u, "smol")
    store.finish_assistant(a, "complete", append="Use sorted(xs).")
    return cid, u, a


def fts_consistent(store: Store) -> bool:
    """FTS5's own check that the index matches the messages table (valid when nothing is streaming)."""
    store.db._conn.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
    return True


def _raw(db) -> sqlite3.Connection:
    return sqlite3.connect(db)


def test_open_sets_wal_schema_version_and_foreign_keys(store, db):
    c = store.db._conn
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert c.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert _raw(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.has_fts


def test_default_location_follows_lmdesk_home(lmdesk_home):
    with Store(app_paths().ensure().database) as s:
        assert s.path == app_paths().database
        assert str(s.path).startswith(str(lmdesk_home))


def test_migration_from_a_hand_made_v1_database(db):
    # The v1 schema written out literally: if someone edits the shipped migration, this breaks.
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE conversations (id INTEGER PRIMARY KEY, title TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL, updated_at REAL NOT NULL, settings TEXT NOT NULL DEFAULT '{}',
            selected_root_id INTEGER REFERENCES messages(id) ON DELETE SET NULL, deleted_at REAL);
        CREATE TABLE messages (id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE, role TEXT NOT NULL,
            content TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT 'complete', created_at REAL NOT NULL,
            model TEXT, stats TEXT, error TEXT, selected_child_id INTEGER REFERENCES messages(id) ON DELETE SET NULL);
        CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
        CREATE INDEX messages_by_parent ON messages(parent_id);
        CREATE INDEX conversations_by_recent ON conversations(updated_at);
        INSERT INTO conversations VALUES (1, 'Old chat', 10, 20, '{"system_prompt": "Be kind.", "temperature": 0.3}', 1, NULL);
        INSERT INTO messages VALUES (1, 1, NULL, 'user', 'What is a zeppelin?', 'complete', 11, NULL, NULL, NULL, 3);
        INSERT INTO messages VALUES (2, 1, 1, 'assistant', 'An airship.', 'complete', 12, 'smol', '{"generated_tokens": 3}', NULL, NULL);
        INSERT INTO messages VALUES (3, 1, 1, 'assistant', 'A rigid dirigible', 'streaming', 13, 'smol', NULL, NULL, NULL);
        PRAGMA user_version = 1;
    """)
    conn.close()

    with Store(db) as s:
        assert s.db._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        info = s.get_conversation(1)
        assert (info.title, info.created_at, info.updated_at) == ("Old chat", 10, 20)
        assert s.get_settings(1).system_prompt == "Be kind." and s.get_settings(1).temperature == 0.3
        tree = s.load_tree(1)
        assert [m.content for m in tree.active_path()] == ["What is a zeppelin?", "A rigid dirigible"]
        assert tree.get(2).stats == {"generated_tokens": 3}
        assert tree.get(3).status == "interrupted"  # left streaming by the old version
        # Tables and indexes added by later versions work on the migrated data.
        assert [c.id for c in s.list_conversations("zeppelin")] == [1]
        assert [c.id for c in s.list_conversations("dirigible")] == [1]  # backfilled, then re-indexed
        assert s.presets.save("Kind", s.get_settings(1)) > 0
        assert s.drafts.create("d", "text") > 0
        assert fts_consistent(s)


def test_a_newer_schema_is_refused_not_damaged(db):
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer lmdesk"):
        Store(db)
    assert _raw(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_a_file_that_is_not_a_database_gives_a_typed_error(db):
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as info:
        Store(db)
    assert info.value.fix
    assert db.read_bytes().startswith(b"this is not sqlite")  # never overwritten


def test_unfinished_reply_becomes_interrupted_with_its_text_on_reopen(db):
    s = Store(db)
    cid, u, a = _chat(s)
    u2 = s.add_message(cid, a, "user", "And in reverse?")
    r = s.begin_assistant(u2, "smol")
    w = StreamWriter(s, r, interval=0.0)
    w.feed("Use sorted(xs, ")
    w.feed("reverse=True)")
    assert s.get_message(r).status == "streaming"
    s.db._conn.close()  # the writer never finishes: the app died
    s.db._conn = None

    with Store(db) as again:
        m = again.get_message(r)
        assert (m.status, m.content) == ("interrupted", "Use sorted(xs, reverse=True)")
        assert again.get_message(a).content == "Use sorted(xs)."
        assert again.get_message(a).status == "complete"
        assert again.recover_interrupted() == 0


def test_stream_writer_flushes_by_time_not_per_token(store):
    clock = Clock()
    cid, u, _ = _chat(store)
    r = store.begin_assistant(u, "smol")
    w = StreamWriter(store, r, interval=1.0, clock=clock)
    for piece in ["a", "b", "c"]:
        clock.t += 0.2
        assert w.feed(piece) is False
    assert store.get_message(r).content == ""
    assert w.pending == "abc"
    clock.t += 0.5  # 1.1 s since the writer started
    assert w.feed("d") is True
    assert store.get_message(r).content == "abcd" and w.pending == ""
    clock.t += 0.3
    w.feed("e")
    assert store.get_message(r).content == "abcd"
    assert w.flush() is True  # an explicit flush (e.g. from a UI timer)
    assert store.get_message(r).content == "abcde"
    assert w.flush() is False  # nothing pending
    w.feed("f")
    w.finish("stopped", GenerationStats("cancelled", generated_tokens=6, generation_seconds=0.5))
    m = store.get_message(r)
    assert (m.content, m.status) == ("abcdef", "stopped")
    assert m.stats["generated_tokens"] == 6 and "tokens_per_second" in m.stats
    assert w.feed("late") is False and store.get_message(r).content == "abcdef"
    assert w.text == "abcdef"


def test_a_failed_flush_keeps_the_text_for_the_next_try(db):
    s = Store(db)
    _, u, _ = _chat(s)
    r = s.begin_assistant(u)
    w = StreamWriter(s, r, interval=0.0)
    w.feed("kept ")
    conn, s.db._conn = s.db._conn, None  # the database becomes unusable for a moment
    with pytest.raises(StoreError):
        w.feed("in memory")
    assert w.pending == "in memory"
    s.db._conn = conn
    w.finish("complete")
    assert s.get_message(r).content == "kept in memory"
    s.close()


def test_a_second_instance_recovering_does_not_stop_the_first_from_saving(db):
    first = Store(db)
    _, u, _ = _chat(first)
    r = first.begin_assistant(u)
    first.append_stream(r, "one ")
    with Store(db) as second:  # marks the live reply interrupted
        assert second.get_message(r).status == "interrupted"
    first.append_stream(r, "two")
    first.finish_assistant(r, "complete")
    assert (first.get_message(r).content, first.get_message(r).status) == ("one two", "complete")
    assert fts_consistent(first)
    first.close()


def test_finish_with_error_keeps_text_and_message(store):
    _, u, _ = _chat(store)
    r = store.begin_assistant(u)
    store.append_stream(r, "partial ")
    store.finish_assistant(r, "error", None, "out of memory")
    m = store.get_message(r)
    assert (m.content, m.status, m.error, m.stats) == ("partial ", "error", "out of memory", None)
    store.append_stream(r, "ignored")  # only streaming rows grow
    assert store.get_message(r).content == "partial "
    with pytest.raises(ValueError):
        store.finish_assistant(r, "streaming")


def test_auto_title_rename_and_recent_order(store):
    clock = iter(range(100, 200))
    store.db.now = lambda: float(next(clock))
    c1 = store.create_conversation()
    store.add_message(c1, None, "user", "Explain the difference between TCP and UDP please, briefly")
    assert store.get_conversation(c1).title == "Explain the difference between TCP and…"
    c2 = store.create_conversation("Named")
    store.add_message(c2, None, "user", "hello")
    assert store.get_conversation(c2).title == "Named"
    store.rename_conversation(c1, "  Networking ")
    store.add_message(c1, None, "user", "another root")
    assert store.get_conversation(c1).title == "Networking"
    assert [c.id for c in store.list_conversations()] == [c1, c2]  # c1 had the latest message


def test_search_titles_and_message_text(store):
    cid, u, a = _chat(store, "Sorting tricks")
    other = store.create_conversation("Cooking")
    store.add_message(other, None, "user", "Best pasta sauce?")
    ids = lambda q: [c.id for c in store.list_conversations(q)]  # noqa: E731
    assert ids("sorting") == [cid]  # title
    assert ids("pasta") == [other]  # message text
    assert ids("sort") == [cid]  # prefix
    assert ids("python list") == [cid]  # all words, one message
    assert ids("python pasta") == []
    assert set(ids("")) == {cid, other}
    for hostile in ['"', 'AND OR NOT', '(', '*', 'a"b', "100%", "NEAR(x y)", "col:val", "_"]:
        store.list_conversations(hostile)  # never an FTS syntax error
    # A streaming reply becomes searchable once it is finished.
    r = store.begin_assistant(u)
    store.append_stream(r, "quicksort mergesort")
    assert ids("mergesort") == []
    store.finish_assistant(r, "complete")
    assert ids("mergesort") == [cid]
    store.delete_message(r)
    assert ids("mergesort") == []
    assert fts_consistent(store)


def test_search_like_fallback_without_fts(store):
    cid, _, _ = _chat(store, "Sorting tricks")
    store.db.has_fts = False
    assert [c.id for c in store.list_conversations("sorted(xs")] == [cid]
    assert [c.id for c in store.list_conversations("100%")] == []


def test_soft_delete_undo_and_purge(store):
    cid, _, _ = _chat(store, "Keep me")
    store.delete_conversation(cid)
    assert store.list_conversations() == []
    assert [c.id for c in store.list_conversations(deleted=True)] == [cid]
    assert store.list_conversations("sorted") == []
    store.undo_delete_conversation(cid)
    assert [c.id for c in store.list_conversations()] == [cid]
    assert len(store.load_tree(cid)) == 2
    store.delete_conversation(cid)
    assert store.purge_deleted() == 1
    with pytest.raises(KeyError):
        store.get_conversation(cid)
    assert store.db._conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    assert store.list_conversations("sorted") == []


def test_versions_branches_and_selection_persist(store, db):
    cid, u, a = _chat(store)
    a2 = store.regenerate(a, "smol")
    store.finish_assistant(a2, "complete", append="xs.sort()")
    assert [m.id for m in store.load_tree(cid).active_path()] == [u, a2]
    assert store.load_tree(cid).version(a2) == (2, 2)
    store.select_message(a)
    u2 = store.edit_and_resend(u, "How do I sort a dict?")
    r = store.begin_assistant(u2)
    store.finish_assistant(r, "complete", append="sorted(d.items())")
    store.close()
    with Store(db) as s:
        t = s.load_tree(cid)
        assert [m.id for m in t.active_path()] == [u2, r]
        s.select_message(a)  # back to the first branch and its first reply
        assert [m.id for m in s.load_tree(cid).active_path()] == [u, a]
        with pytest.raises(ValueError):
            s.regenerate(u)
        with pytest.raises(ValueError):
            s.edit_and_resend(a, "x")


def test_delete_message_removes_subtree_and_keeps_the_rest(store):
    cid, u, a = _chat(store)
    u2 = store.add_message(cid, a, "user", "more")
    store.add_message(cid, u2, "assistant", "sure")
    a2 = store.regenerate(a)
    store.finish_assistant(a2, "complete", append="other")
    store.select_message(a)
    assert store.delete_message(a) == 3
    assert [m.id for m in store.load_tree(cid).active_path()] == [u, a2]
    assert store.delete_message(u) == 2
    assert store.load_tree(cid).active_path() == []


def test_long_chains_delete_and_purge_without_recursion_limits(store):
    cid = store.create_conversation("long")
    first = store.add_message(cid, None, "user", "m0")
    with store.db.transaction() as c:  # a chain deeper than SQLite's trigger-depth limit of 1000, written in bulk
        c.executemany("INSERT INTO messages(id, conversation_id, parent_id, role, content, created_at)"
                      " VALUES (?,?,?,?,?,0)",
                      [(first + i, cid, first + i - 1, "user" if i % 2 == 0 else "assistant", f"m{i}")
                       for i in range(1, 1200)])
    assert len(store.load_tree(cid).active_path()) == 1200
    assert store.delete_message(first + 1) == 1199
    store.purge_conversation(cid)
    assert store.db._conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


def test_fork_copies_the_path_into_a_new_conversation(store):
    cid, u, a = _chat(store, "Original")
    store.set_settings(cid, ConversationSettings(system_prompt="Terse."))
    u2 = store.add_message(cid, a, "user", "later")
    a2 = store.regenerate(a)  # the forked reply is no longer on the active path
    store.finish_assistant(a2, "complete", append="other")
    fid = store.fork(a)
    assert fid != cid
    assert store.get_conversation(fid).title == "Original (fork)"
    assert store.get_settings(fid).system_prompt == "Terse."
    path = store.load_tree(fid).active_path()
    assert [m.content for m in path] == ["How do I sort a list in Python?", "Use sorted(xs)."]
    assert path[1].model == "smol"
    assert u2 in store.load_tree(cid)


def test_settings_per_conversation(store, db):
    cid = store.create_conversation()
    s = ConversationSettings(system_prompt="Pirate.", temperature=1.2, top_k=5, seed=3, context_policy="error")
    store.set_settings(cid, s)
    store.close()
    with Store(db) as again:
        assert again.get_settings(cid) == s


def test_presets_crud(store):
    pid = store.presets.save("Pirate", ConversationSettings(system_prompt="Arr."))
    assert store.presets.save("Pirate", ConversationSettings(system_prompt="Arrr!")) == pid  # overwrite by name
    store.presets.save("Accountant", ConversationSettings(temperature=0.1))
    assert [p.name for p in store.presets.list()] == ["Accountant", "Pirate"]
    assert store.presets.get(pid).settings.system_prompt == "Arrr!"
    store.presets.rename(pid, "Buccaneer")
    assert store.presets.get(pid).name == "Buccaneer"
    with pytest.raises(StoreError):
        store.presets.rename(pid, "Accountant")  # names are unique
    with pytest.raises(ValueError):
        store.presets.save("  ", ConversationSettings())
    store.presets.delete(pid)
    assert [p.name for p in store.presets.list()] == ["Accountant"]


def test_drafts_and_kv(store):
    d = store.drafts.create("Letter", "Dear")
    store.drafts.update(d, text="Dear Sir")
    assert (store.drafts.get(d).title, store.drafts.get(d).text) == ("Letter", "Dear Sir")
    store.drafts.delete(d)
    assert store.drafts.list() == [] and [x.id for x in store.drafts.list(deleted=True)] == [d]
    store.drafts.undo_delete(d)
    assert [x.id for x in store.drafts.list()] == [d]
    store.drafts.purge(d)
    with pytest.raises(KeyError):
        store.drafts.get(d)
    assert store.kv.get("last_conversation") is None
    store.kv.set("last_conversation", 12)
    store.kv.set("last_conversation", 13)
    assert store.kv.get("last_conversation") == 13


def test_export_import_round_trip(store):
    cid, u, a = _chat(store, "Round trip")
    store.set_settings(cid, ConversationSettings(system_prompt="Be exact.", seed=42))
    a2 = store.regenerate(a, "other-model")
    store.finish_assistant(a2, "stopped", {"generated_tokens": 2}, append="Half")
    store.select_message(a)
    store.add_message(cid, a, "user", "Ünïcødé ✓ and ```code```")
    doc = store.export_json(cid)
    assert (doc["format"], doc["version"]) == ("lmdesk.conversation", 1)
    json.dumps(doc)  # serialisable as is

    new = store.import_json(json.dumps(doc))
    assert new != cid
    again = store.export_json(new)
    for d in (doc, again):
        d.pop("updated_at")
    assert again == doc
    assert [m.content for m in store.load_tree(new).active_path()] == [
        m.content for m in store.load_tree(cid).active_path()]
    assert fts_consistent(store)


def test_import_rejects_bad_documents_and_writes_nothing(store):
    cid, _, _ = _chat(store)
    good = store.export_json(cid)
    bad_docs = [
        "not json", {"format": "other"}, {**good, "version": 99},
        {**good, "messages": [{**good["messages"][0], "role": "wizard"}]},
        {**good, "messages": [{**good["messages"][0], "parent": 5}]},
        {**good, "messages": [good["messages"][1]]},
    ]
    for bad in bad_docs:
        with pytest.raises(StoreError):
            store.import_json(bad)
    assert [c.id for c in store.list_conversations()] == [cid]


def test_import_turns_streaming_into_interrupted(store):
    cid, u, _ = _chat(store)
    store.begin_assistant(u)
    doc = store.export_json(cid)
    new = store.import_json(doc)
    assert store.load_tree(new).leaf().status == "interrupted"


def test_export_markdown_shows_the_active_path(store):
    cid, u, a = _chat(store, "Sorting")
    store.set_settings(cid, ConversationSettings(system_prompt="Be brief."))
    a2 = store.regenerate(a)
    store.finish_assistant(a2, "error", None, "server unreachable", append="Par")
    md = store.export_markdown(cid)
    assert md.startswith("# Sorting\n")
    assert "Be brief." in md
    assert "## User\n\nHow do I sort a list in Python?" in md
    assert "Par" in md and "[error: server unreachable]" in md
    assert "Use sorted(xs)." not in md  # not on the active path


def test_calls_from_several_threads_are_serialised(store):
    cid = store.create_conversation("threads")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                store.add_message(cid, None, "user", f"t{n}-{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.load_tree(cid)) == 150


def test_closed_store_raises_a_typed_error(db):
    s = Store(db)
    s.close()
    s.close()
    with pytest.raises(StoreError):
        s.create_conversation()
