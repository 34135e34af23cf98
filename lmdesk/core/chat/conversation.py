"""A conversation as a tree of messages: branches, versions, the active path, per-chat settings.

Every edit-and-resend or regenerate adds a *sibling* instead of overwriting, so nothing a user
saw is ever lost. Each node remembers which child is selected; following those choices from the
selected root gives the *active path*, which is what the view shows and what the model is sent.
This module is pure data and logic; lmdesk.core.storage.store persists it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Literal

from lmdesk.core.messages import ChatMessage, Role
from lmdesk.core.params import ContextPolicy, GenerationParams

Status = Literal["complete", "streaming", "stopped", "interrupted", "error"]
STATUSES: tuple[str, ...] = ("complete", "streaming", "stopped", "interrupted", "error")
ROLES: tuple[str, ...] = ("system", "user", "assistant")
# Statuses whose text is a real (possibly partial) reply worth sending back to the model.
_PROMPTABLE = {"complete", "stopped", "interrupted"}


@dataclass
class Message:
    """One node of the tree; `selected_child_id` is the child on the active path (None: the newest)."""

    id: int
    conversation_id: int
    parent_id: int | None
    role: Role
    content: str
    status: Status = "complete"
    created_at: float = 0.0
    model: str | None = None
    stats: dict | None = None
    error: str | None = None
    selected_child_id: int | None = None


_DEFAULTS = GenerationParams()


@dataclass
class ConversationInfo:
    """A conversation's row, as the sidebar lists it."""

    id: int
    title: str
    created_at: float
    updated_at: float
    deleted_at: float | None = None


@dataclass
class ConversationSettings:
    """Per-conversation generation settings (also the content of a preset / persona)."""

    system_prompt: str = ""
    temperature: float = _DEFAULTS.temperature
    top_p: float = _DEFAULTS.top_p
    top_k: int = _DEFAULTS.top_k
    min_p: float = _DEFAULTS.min_p
    repeat_penalty: float = _DEFAULTS.repeat_penalty
    max_tokens: int = _DEFAULTS.max_tokens
    seed: int | None = None
    context_policy: str = ContextPolicy.DROP_OLDEST.value

    @classmethod
    def from_dict(cls, raw: object) -> ConversationSettings:
        """Build from stored JSON; unknown keys are ignored and missing ones take defaults."""
        if not isinstance(raw, dict):
            return cls()
        known = {f.name for f in fields(cls)}
        s = cls(**{k: v for k, v in raw.items() if k in known})
        if s.context_policy not in {p.value for p in ContextPolicy}:
            s.context_policy = ContextPolicy.DROP_OLDEST.value
        return s

    def to_dict(self) -> dict:
        """Plain JSON-friendly dict."""
        return asdict(self)

    def to_params(self) -> GenerationParams:
        """The sampling parameters a request for this conversation should use."""
        return GenerationParams(
            max_tokens=int(self.max_tokens),
            temperature=float(self.temperature),
            top_p=float(self.top_p),
            top_k=int(self.top_k),
            min_p=float(self.min_p),
            repeat_penalty=float(self.repeat_penalty),
            seed=self.seed,
            context_policy=ContextPolicy(self.context_policy),
        )


@dataclass
class ConversationTree:
    """All messages of one conversation, indexed for tree walks (children kept in creation order)."""

    conversation_id: int
    selected_root_id: int | None = None
    _by_id: dict[int, Message] = field(default_factory=dict, repr=False)
    _children: dict[int | None, list[int]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_messages(
        cls, conversation_id: int, messages: Iterable[Message], selected_root_id: int | None = None
    ) -> ConversationTree:
        """Build from messages given parents-first (the store yields them in creation order)."""
        tree = cls(conversation_id, selected_root_id)
        for m in messages:
            tree.add(m, select=False)
        return tree

    # -- reading ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._by_id

    def __iter__(self) -> Iterator[Message]:
        """Messages in creation order, parents before children."""
        return iter(list(self._by_id.values()))

    def get(self, message_id: int) -> Message:
        """The message with this id (KeyError if absent)."""
        return self._by_id[message_id]

    def children(self, parent_id: int | None) -> list[Message]:
        """Children of a message (None: the roots), oldest first."""
        return [self._by_id[i] for i in self._children.get(parent_id, ())]

    def selected_child(self, parent_id: int | None) -> Message | None:
        """The child on the active path: the remembered choice, else the newest child."""
        kids = self._children.get(parent_id)
        if not kids:
            return None
        chosen = self.selected_root_id if parent_id is None else self._by_id[parent_id].selected_child_id
        return self._by_id[chosen] if chosen in kids else self._by_id[kids[-1]]

    def active_path(self) -> list[Message]:
        """From the selected root down through each selected child to a leaf."""
        path: list[Message] = []
        node = self.selected_child(None)
        while node is not None:
            path.append(node)
            node = self.selected_child(node.id)
        return path

    def path_to(self, message_id: int) -> list[Message]:
        """The messages from the root down to (and including) `message_id`."""
        path = []
        node: Message | None = self._by_id[message_id]
        while node is not None:
            path.append(node)
            node = self._by_id.get(node.parent_id) if node.parent_id is not None else None
        path.reverse()
        return path

    def leaf(self) -> Message | None:
        """The last message of the active path (where the next user message attaches)."""
        path = self.active_path()
        return path[-1] if path else None

    def siblings(self, message_id: int) -> list[Message]:
        """The versions of a message: children of the same parent with the same role, oldest first."""
        m = self._by_id[message_id]
        return [s for s in self.children(m.parent_id) if s.role == m.role]

    def version(self, message_id: int) -> tuple[int, int]:
        """(1-based index, count) among its versions, for the `< 2/3 >` switcher."""
        ids = [s.id for s in self.siblings(message_id)]
        return ids.index(message_id) + 1, len(ids)

    def subtree_ids(self, message_id: int) -> list[int]:
        """`message_id` and all its descendants (parents before children)."""
        out, stack = [], [message_id]
        while stack:
            i = stack.pop()
            out.append(i)
            stack.extend(reversed(self._children.get(i, ())))
        return out

    # -- changing --------------------------------------------------------------------------------

    def add(self, message: Message, select: bool = True) -> Message:
        """Attach a message under its parent; with `select` it becomes part of the active path."""
        if message.id in self._by_id:
            raise ValueError(f"message {message.id} is already in the tree")
        if message.parent_id is not None and message.parent_id not in self._by_id:
            raise KeyError(f"parent {message.parent_id} of message {message.id} is not in the tree")
        self._by_id[message.id] = message
        self._children.setdefault(message.parent_id, []).append(message.id)
        if select:
            self.select(message.id)
        return message

    def select(self, message_id: int) -> list[tuple[int | None, int]]:
        """Put a message on the active path; returns the (parent_id, child_id) choices that changed."""
        changes: list[tuple[int | None, int]] = []
        node: Message | None = self._by_id[message_id]
        while node is not None:  # walk to the root: a chosen child in an unchosen branch is not enough
            if self._chosen(node.parent_id) != node.id:
                if node.parent_id is None:
                    self.selected_root_id = node.id
                else:
                    self._by_id[node.parent_id].selected_child_id = node.id
                changes.append((node.parent_id, node.id))
            node = self._by_id[node.parent_id] if node.parent_id is not None else None
        return changes

    def _chosen(self, parent_id: int | None) -> int | None:
        return self.selected_root_id if parent_id is None else self._by_id[parent_id].selected_child_id

    def remove(self, message_id: int) -> list[int]:
        """Delete a message and its subtree; returns the removed ids. The parent falls back to its newest child."""
        gone = self.subtree_ids(message_id)
        parent_id = self._by_id[message_id].parent_id
        self._children[parent_id].remove(message_id)
        for i in gone:
            del self._by_id[i]
            self._children.pop(i, None)
        if parent_id is None:
            if self.selected_root_id == message_id:
                self.selected_root_id = None
        elif self._by_id[parent_id].selected_child_id == message_id:
            self._by_id[parent_id].selected_child_id = None
        return gone

    def regenerate(self, assistant_id: int, new_id: int, model: str | None = None, now: float | None = None) -> Message:
        """A new, empty, streaming version of an assistant reply (a sibling), selected."""
        old = self._by_id[assistant_id]
        if old.role != "assistant":
            raise ValueError("only an assistant reply can be regenerated")
        return self.add(new_message(new_id, self.conversation_id, old.parent_id, "assistant", "", "streaming", model, now))

    def edit_and_resend(self, user_id: int, content: str, new_id: int, now: float | None = None) -> Message:
        """A new version of a user message (a new branch from its parent), selected."""
        old = self._by_id[user_id]
        if old.role != "user":
            raise ValueError("only a user message can be edited and resent")
        return self.add(new_message(new_id, self.conversation_id, old.parent_id, "user", content, "complete", None, now))

    def fork(self, message_id: int, new_conversation_id: int, new_ids: Iterable[int]) -> ConversationTree:
        """A new tree holding a copy of the path from the root to `message_id` (with fresh ids)."""
        out = ConversationTree(new_conversation_id)
        parent: int | None = None
        for m, nid in zip(self.path_to(message_id), new_ids, strict=False):
            copy = replace(m, id=nid, conversation_id=new_conversation_id, parent_id=parent,
                           selected_child_id=None, stats=dict(m.stats) if m.stats else None)
            if copy.status == "streaming":
                copy.status = "interrupted"  # a copy is never being written to
            out.add(copy)
            parent = nid
        return out


def new_message(
    message_id: int, conversation_id: int, parent_id: int | None, role: Role, content: str,
    status: Status = "complete", model: str | None = None, now: float | None = None,
) -> Message:
    """A fresh Message stamped with the current time."""
    return Message(message_id, conversation_id, parent_id, role, content, status,
                   time.time() if now is None else now, model)


def chat_messages(path: Iterable[Message], system_prompt: str = "") -> list[ChatMessage]:
    """What the backend is sent for a path: the system prompt, then every usable turn.

    Replies that failed or are still being written (the one this request will fill) are left out;
    stopped and interrupted replies are kept, since the user saw and may be building on them.
    """
    out = [ChatMessage("system", system_prompt)] if system_prompt.strip() else []
    for m in path:
        if m.role == "assistant" and (m.status not in _PROMPTABLE or not m.content):
            continue
        out.append(ChatMessage(m.role, m.content))
    return out


def auto_title(text: str, max_words: int = 6, max_chars: int = 60) -> str:
    """A title from the first user message: its first few words on one line, trimmed."""
    words = text.split()
    title = " ".join(words[:max_words])
    if len(title) > max_chars:
        title = title[:max_chars].rstrip()
    title = title.rstrip(" .,;:!?-")
    if len(words) > max_words or len(" ".join(words[:max_words])) > max_chars:
        title += "…"
    return title or "New chat"
