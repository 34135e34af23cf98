"""StreamWriter: saves a streaming reply to its store row at least every second, with no thread of its own."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("lmdesk.store")


class ReplyRow(Protocol):
    """Where a StreamWriter saves: the streaming-reply methods of lmdesk.core.storage.store.Store."""

    def append_stream(self, message_id: int, text: str) -> None: ...

    def finish_assistant(self, message_id: int, status: str = "complete", stats: object = None,
                         error: str | None = None, append: str = "") -> None: ...


class StreamWriter:
    """Buffers a streaming reply and writes it to its row at least every `interval` seconds.

    Call `feed(text)` for every batch from the engine and `finish(...)` at the end. It has no thread
    or timer of its own: a flush happens inside `feed` once `interval` has passed since the last one
    (so a stalled stream keeps at most the text of the last interval in memory); call `flush()`
    from a timer if you want idle text saved too. `clock` is injectable for tests.
    """

    def __init__(self, store: ReplyRow, message_id: int, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.message_id = message_id
        self.interval = interval
        self._clock = clock
        self._pending: list[str] = []
        self._last_flush = clock()
        self.text = ""  # everything fed so far
        self.finished = False

    @property
    def pending(self) -> str:
        """Text fed but not yet written."""
        return "".join(self._pending)

    def feed(self, text: str) -> bool:
        """Buffer text; writes it out if `interval` has passed. Returns whether it flushed."""
        if self.finished:
            log.debug("late text for finished reply %s ignored", self.message_id)
            return False
        if text:
            self._pending.append(text)
            self.text += text
        if self._clock() - self._last_flush >= self.interval:
            return self.flush()
        return False

    def flush(self) -> bool:
        """Write the buffered text now (kept in the buffer if the write fails). Returns whether it wrote."""
        self._last_flush = self._clock()
        if not self._pending or self.finished:
            return False
        text = "".join(self._pending)
        self.store.append_stream(self.message_id, text)
        self._pending.clear()
        return True

    def finish(self, status: str = "complete", stats: object = None, error: str | None = None) -> None:
        """Write the rest and the final status in one transaction."""
        if self.finished:
            return
        self.store.finish_assistant(self.message_id, status, stats, error, append="".join(self._pending))
        self._pending.clear()
        self.finished = True
