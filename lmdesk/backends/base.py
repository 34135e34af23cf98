"""The Backend protocol every model runtime implements, with its capability flags.

A backend is a loaded model plus a generator: `generate()` yields text pieces (str) while the
model produces them and, last, exactly one GenerationStats. It never imports Qt and never
touches the GUI; the engine's worker thread is its only caller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from lmdesk.core.errors import (  # noqa: F401  (re-exported: the typed errors of DESIGN.md)
    BackendUnavailableError,
    ContextOverflowError,
    GenerationError,
    LmdeskError,
    ModelLoadError,
)
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions
from lmdesk.core.stats import GenerationStats

ProgressCallback = Callable[[float], None]  # fraction 0.0–1.0 of the load done


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, so the UI can show or hide features."""

    streaming: bool = True
    cancel_during_prompt: bool = False  # Stop works while a long prompt is being evaluated
    prefix_cache: bool = False  # a follow-up turn evaluates only the new tokens
    gpu: bool = False
    lora: bool = False


@runtime_checkable
class Backend(Protocol):
    """A loaded model that streams chat replies."""

    name: str  # "llama", "torch", "remote", "fake"
    capabilities: Capabilities
    model_path: str
    context_length: int
    device: str  # "cpu", "cuda", "mps", a server URL…

    def generate(
        self, messages: Sequence[ChatMessage], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str | GenerationStats]:
        """Yield text pieces, then one GenerationStats. Checks `cancel` between tokens."""
        ...

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens the rendered prompt for `messages` takes (with the generation prompt)."""
        ...

    def close(self) -> None:
        """Free the model's memory. The backend is unusable afterwards."""
        ...


BackendLoader = Callable[[str, LoadOptions, ProgressCallback, threading.Event], Backend]
