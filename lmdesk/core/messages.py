"""Chat messages as the backends see them (the branching conversation tree lives elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a conversation."""

    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        """The {'role', 'content'} mapping that chat templates expect."""
        return {"role": self.role, "content": self.content}
