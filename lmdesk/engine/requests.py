"""What a caller can ask of a model slot, and what a load gives back. Plain data, no threads."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from lmdesk.backends.base import Capabilities
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions
from lmdesk.core.stats import GenerationStats

_ids = itertools.count(1)
_ids_lock = threading.Lock()  # itertools.count is atomic under the GIL, not on free-threaded builds


def next_request_id() -> int:
    """A process-wide unique, increasing request id (thread-safe)."""
    with _ids_lock:
        return next(_ids)


@dataclass
class GenerateRequest:
    """Generate a chat reply to `messages`."""

    messages: list[ChatMessage]
    params: GenerationParams = field(default_factory=GenerationParams)
    id: int = field(default_factory=next_request_id)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)


@dataclass
class LoadRequest:
    """Load the model at `path` with `backend`, replacing the slot's model only on success."""

    backend: str
    path: str
    options: LoadOptions = field(default_factory=LoadOptions)
    id: int = field(default_factory=next_request_id)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)


@dataclass
class CountRequest:
    """Count the prompt tokens of `messages` with the loaded model's own tokenizer and template.

    Served ahead of the queue, even between the tokens of a running generation: a count is quick
    and the context meters that ask for it should not wait for a reply to end.
    """

    messages: list[ChatMessage]
    id: int = field(default_factory=next_request_id)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)


Request = Union[GenerateRequest, LoadRequest, CountRequest]


@dataclass(frozen=True)
class LoadedModel:
    """What the GUI and the CLI need to know about the model loaded in a slot."""

    backend: str
    path: str
    name: str
    context_length: int
    device: str
    capabilities: Capabilities
    dtype: str | None = None  # torch: "bfloat16", "float16", "float32"; None for GGUF


@dataclass(frozen=True)
class TokenCount:
    """The answer to a CountRequest: `tokens` in the prompt, as `model` would see it."""

    tokens: int
    context_length: int
    model: str


@dataclass(frozen=True)
class Reply:
    """A finished (or stopped) generation: its whole text and what it measured."""

    text: str
    stats: GenerationStats

    @property
    def cancelled(self) -> bool:
        """The generation was stopped before its natural end."""
        return self.stats.stop_reason == "cancelled"


def model_name(path: str) -> str:
    """A short display name: the file name without .gguf, or the folder name."""
    p = Path(path)
    name = p.name or str(path)
    return name[: -len(".gguf")] if name.lower().endswith(".gguf") else name
