"""Statistics reported at the end of every generation."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

StopReason = Literal["stop", "length", "cancelled"]


@dataclass
class GenerationStats:
    """What a finished (or stopped) generation measured."""

    stop_reason: StopReason
    prompt_tokens: int = 0  # tokens in the rendered prompt
    prompt_tokens_evaluated: int = 0  # of those, how many were actually evaluated (prefix reuse skips the rest)
    generated_tokens: int = 0
    time_to_first_token: float | None = None  # seconds from request start to first text piece
    generation_seconds: float = 0.0  # from first token to last
    dropped_messages: int = 0  # turns dropped by the context policy

    @property
    def tokens_per_second(self) -> float:
        """Decode speed; 0 when nothing was generated."""
        if self.generated_tokens <= 1 or self.generation_seconds <= 0:
            return 0.0
        return (self.generated_tokens - 1) / self.generation_seconds

    def to_dict(self) -> dict:
        """Plain dict (JSON-friendly), with tokens_per_second included."""
        d = asdict(self)
        d["tokens_per_second"] = self.tokens_per_second
        return d
