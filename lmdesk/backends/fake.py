"""A scripted backend for unit tests of logic: yields given pieces with given delays."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from lmdesk.backends.base import Capabilities, ProgressCallback
from lmdesk.core.errors import GenerationError, ModelLoadError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions
from lmdesk.core.stats import GenerationStats


@dataclass
class FakeBackend:
    """Replies with `pieces` (or `reply_for(messages)`), sleeping `delay` seconds before each."""

    pieces: Sequence[str] = ("Hello", ",", " world", "!")
    delay: float = 0.0
    fail_after: int | None = None  # raise GenerationError after this many pieces
    model_path: str = "fake"
    context_length: int = 2048
    name: str = "fake"
    device: str = "cpu"
    capabilities: Capabilities = field(default_factory=lambda: Capabilities(cancel_during_prompt=True))
    closed: bool = False
    calls: list[list[ChatMessage]] = field(default_factory=list)

    def generate(
        self, messages: Sequence[ChatMessage], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str | GenerationStats]:
        """Yield the scripted pieces, honouring cancel and max_tokens."""
        if self.closed:
            raise GenerationError("the fake model was closed")
        self.calls.append(list(messages))
        start = time.perf_counter()
        first: float | None = None
        n = 0
        reason = "stop"
        for piece in self.pieces:
            if self.delay:
                cancel.wait(self.delay)
            if cancel.is_set():
                reason = "cancelled"
                break
            if n >= params.max_tokens:
                reason = "length"
                break
            if self.fail_after is not None and n >= self.fail_after:
                raise GenerationError("the fake model failed on purpose")
            if first is None:
                first = time.perf_counter()
            n += 1
            yield piece
        end = time.perf_counter()
        prompt = self.count_tokens(messages)
        yield GenerationStats(
            stop_reason=reason,
            prompt_tokens=prompt,
            prompt_tokens_evaluated=prompt,
            generated_tokens=n,
            time_to_first_token=None if first is None else first - start,
            generation_seconds=0.0 if first is None else end - first,
        )

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Roughly one token per 4 characters, like English text."""
        return sum(len(m.content) // 4 + 4 for m in messages) + 2

    def close(self) -> None:
        """Mark closed: later generate() calls fail."""
        self.closed = True


def load(path: str, options: LoadOptions, progress: ProgressCallback, cancel: threading.Event) -> FakeBackend:
    """Loader for the registry: `fake`, `fake:slow` (0.05 s per piece) or `fake:broken` (load fails)."""
    if path == "fake:broken":
        raise ModelLoadError("the fake model 'fake:broken' cannot be loaded (on purpose)")
    for step in range(1, 5):
        if cancel.is_set():
            raise ModelLoadError("loading was cancelled")
        progress(step / 4)
    delay = 0.05 if path == "fake:slow" else 0.0
    return FakeBackend(
        pieces=tuple(f"word{i} " for i in range(40)) if path == "fake:slow" else FakeBackend.pieces,
        delay=delay,
        model_path=path,
        context_length=options.n_ctx,
    )
