"""The conversation tree: active path, versions, branches, fork, delete — pure logic, no database."""

from __future__ import annotations

import pytest

from lmdesk.core.chat.conversation import (
    ConversationSettings, ConversationTree, Message, auto_title, chat_messages, new_message,
)
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import ContextPolicy, GenerationParams


def _tree() -> ConversationTree:
    """u1 → a2 → u3 → a4, built the way the chat pane builds it."""
    t = ConversationTree(conversation_id=7)
    t.add(new_message(1, 7, None, "user", "Hi", now=1.0))
    t.add(new_message(2, 7, 1, "assistant", "Hello!", model="m", now=2.0))
    t.add(new_message(3, 7, 2, "user", "Tell me a joke", now=3.0))
    t.add(new_message(4, 7, 3, "assistant", "No.", now=4.0))
    return t


def _ids(msgs: list[Message]) -> list[int]:
    return [m.id for m in msgs]


def test_linear_active_path_and_leaf():
    t = _tree()
    assert _ids(t.active_path()) == [1, 2, 3, 4]
    assert t.leaf().id == 4
    assert _ids(t.path_to(3)) == [1, 2, 3]
    assert t.version(4) == (1, 1)
    assert len(t) == 4 and 3 in t and 99 not in t


def test_regenerate_adds_a_selected_sibling_version():
    t = _tree()
    new = t.regenerate(4, new_id=5, model="m2", now=5.0)
    assert (new.parent_id, new.role, new.status, new.content, new.model) == (3, "assistant", "streaming", "", "m2")
    assert _ids(t.active_path()) == [1, 2, 3, 5]
    assert _ids(t.siblings(5)) == [4, 5]
    assert t.version(5) == (2, 2) and t.version(4) == (1, 2)
    # Switching back to version 1 is just a selection; nothing is lost.
    assert t.select(4) == [(3, 4)]
    assert _ids(t.active_path()) == [1, 2, 3, 4]
    assert t.select(4) == []  # already there: nothing to persist


def test_edit_and_resend_starts_a_branch_that_keeps_the_old_one():
    t = _tree()
    edited = t.edit_and_resend(3, "Tell me a pun", new_id=5)
    assert edited.parent_id == 2 and edited.content == "Tell me a pun"
    assert _ids(t.active_path()) == [1, 2, 5]
    t.add(new_message(6, 7, 5, "assistant", "Pun!"))
    assert _ids(t.active_path()) == [1, 2, 5, 6]
    assert t.version(5) == (2, 2)
    t.select(3)  # back to the first branch: its own reply comes back with it
    assert _ids(t.active_path()) == [1, 2, 3, 4]
    t.select(6)  # selecting a deep node selects its ancestors too
    assert _ids(t.active_path()) == [1, 2, 5, 6]


def test_editing_the_first_message_makes_a_second_root():
    t = _tree()
    t.edit_and_resend(1, "Hey", new_id=5)
    assert _ids(t.active_path()) == [5]
    assert _ids(t.siblings(1)) == [1, 5]
    changes = t.select(4)
    assert (None, 1) in changes
    assert _ids(t.active_path()) == [1, 2, 3, 4]


def test_siblings_are_only_those_of_the_same_role():
    t = ConversationTree(1)
    t.add(new_message(1, 1, None, "user", "q"))
    t.add(new_message(2, 1, 1, "assistant", "a"))
    t.add(new_message(3, 1, 1, "user", "a user message under a user message"))
    assert _ids(t.siblings(2)) == [2]
    assert _ids(t.children(1)) == [2, 3]


def test_default_selection_is_the_newest_child():
    msgs = [new_message(1, 1, None, "user", "q"), new_message(2, 1, 1, "assistant", "a"),
            new_message(3, 1, 1, "assistant", "b")]
    t = ConversationTree.from_messages(1, msgs)  # nothing remembered: newest wins
    assert _ids(t.active_path()) == [1, 3]
    msgs[0].selected_child_id = 2
    t = ConversationTree.from_messages(1, msgs)
    assert _ids(t.active_path()) == [1, 2]


def test_delete_removes_the_subtree_and_falls_back_to_another_version():
    t = _tree()
    t.regenerate(2, new_id=5)  # second version of the first reply
    t.select(4)
    assert _ids(t.active_path()) == [1, 2, 3, 4]
    assert sorted(t.remove(2)) == [2, 3, 4]
    assert _ids(t.active_path()) == [1, 5]
    assert 3 not in t and 4 not in t
    t.remove(1)
    assert t.active_path() == [] and t.leaf() is None and len(t) == 0


def test_fork_copies_the_path_with_new_ids():
    t = _tree()
    t.regenerate(4, new_id=5)
    forked = t.fork(3, new_conversation_id=8, new_ids=iter([101, 102, 103]))
    path = forked.active_path()
    assert _ids(path) == [101, 102, 103]
    assert [m.content for m in path] == ["Hi", "Hello!", "Tell me a joke"]
    assert {m.conversation_id for m in path} == {8}
    assert [m.parent_id for m in path] == [None, 101, 102]
    assert _ids(t.active_path()) == [1, 2, 3, 5]  # the original is untouched


def test_fork_of_a_streaming_reply_is_not_streaming():
    t = _tree()
    t.regenerate(4, new_id=5)
    forked = t.fork(5, 9, range(200, 300))
    assert forked.leaf().status == "interrupted"
    assert t.get(5).status == "streaming"


def test_invalid_operations_are_refused():
    t = _tree()
    with pytest.raises(ValueError):
        t.regenerate(3, new_id=9)
    with pytest.raises(ValueError):
        t.edit_and_resend(4, "x", new_id=9)
    with pytest.raises(KeyError):
        t.add(new_message(9, 7, 42, "user", "orphan"))
    with pytest.raises(ValueError):
        t.add(new_message(4, 7, 3, "user", "duplicate id"))


def test_chat_messages_for_the_backend():
    t = _tree()
    t.add(new_message(5, 7, 4, "user", "Again"))
    t.get(4).status = "stopped"  # a stopped reply was seen by the user: it stays in the prompt
    t.add(new_message(6, 7, 5, "assistant", "", status="streaming"))
    msgs = chat_messages(t.active_path(), system_prompt="Be brief.")
    assert msgs == [
        ChatMessage("system", "Be brief."), ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello!"),
        ChatMessage("user", "Tell me a joke"), ChatMessage("assistant", "No."), ChatMessage("user", "Again"),
    ]
    t.get(4).status = "error"
    assert ChatMessage("assistant", "No.") not in chat_messages(t.active_path())
    assert chat_messages(t.active_path())[0] == ChatMessage("user", "Hi")  # no empty system prompt


def test_auto_title():
    assert auto_title("What is the capital of France?") == "What is the capital of France"
    assert auto_title("one two three four five six seven eight") == "one two three four five six…"
    assert auto_title("  multi\nline\n\ttext ") == "multi line text"
    assert auto_title("   ") == "New chat"
    assert len(auto_title("x" * 500)) <= 61


def test_settings_round_trip_and_params():
    s = ConversationSettings(system_prompt="You are a pirate.", temperature=0.2, seed=7,
                             context_policy=ContextPolicy.ERROR.value)
    again = ConversationSettings.from_dict({**s.to_dict(), "unknown": 1})
    assert again == s
    p = again.to_params()
    assert isinstance(p, GenerationParams)
    assert (p.temperature, p.seed, p.context_policy) == (0.2, 7, ContextPolicy.ERROR)
    assert ConversationSettings.from_dict(None) == ConversationSettings()
    assert ConversationSettings.from_dict({"context_policy": "bogus"}).context_policy == "drop_oldest"
