"""ReplyStreamer: runs one reply at a time and keeps its store row in step with the engine.

The row is created (status `streaming`) before the request is queued, every batch goes through a
StreamWriter (which writes at least once a second, plus a 1 s timer for idle streams), and the
end writes the final status with the stats. The view is told separately, so a reply keeps being
saved while the user looks at another conversation. A final write that fails (disk full, database
locked) keeps the text in memory and is retried by the same timer until it succeeds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal

from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams
from lmdesk.core.stats import GenerationStats
from lmdesk.core.storage.store import Store, StoreError
from lmdesk.core.storage.stream_writer import StreamWriter
from lmdesk.engine.bridge import EngineBridge, QtJob

log = logging.getLogger("lmdesk.ui")

FLUSH_MS = 1000


@dataclass
class ReplyRequest:
    """What a new reply needs: where it goes in the tree and what the model is sent."""

    conversation_id: int
    parent_id: int
    messages: list[ChatMessage]
    params: GenerationParams
    model: str | None = None


@dataclass
class Generation:
    """A reply being written: its engine job, its store row and the writer saving it."""

    job: QtJob
    conversation_id: int
    message_id: int
    writer: StreamWriter


class ReplyStreamer(QObject):
    """Starts, saves and ends replies, one engine job each."""

    sig_text = Signal(int, str)
    """(message id, text) a batch of the reply arrived (already buffered for the store)."""
    sig_done = Signal(int, object)
    """(message id, GenerationStats) the reply ended normally, by length, or stopped."""
    sig_failed = Signal(int, str)
    """(message id, one-line message) the reply failed; its row is marked `error`."""
    sig_error = Signal(str)
    """A store write failed (the text stays in memory and is retried)."""

    def __init__(self, bridge: EngineBridge, store: Store, parent=None) -> None:
        super().__init__(parent)
        self.bridge, self.store = bridge, store
        self.current: Generation | None = None
        self._unsaved: list[tuple[Generation, str, object, str | None]] = []  # final writes to retry
        self._flush = QTimer(self, interval=FLUSH_MS)
        self._flush.timeout.connect(self._flush_now)

    @property
    def busy(self) -> bool:
        """A reply is being written."""
        return self.current is not None

    def start(self, req: ReplyRequest) -> int:
        """Create the reply's row and queue the request; returns the new message id."""
        mid = self.store.begin_assistant(req.parent_id, req.model, req.conversation_id)
        try:
            job = self.bridge.generate(req.messages, req.params)
        except RuntimeError as exc:  # the engine was shut down
            self.store.finish_assistant(mid, "error", error=str(exc))
            raise
        gen = Generation(job, req.conversation_id, mid, StreamWriter(self.store, mid))
        job.sig_text.connect(lambda text: self._on_text(gen, text))
        job.sig_finished.connect(lambda stats: self._on_finished(gen, "complete", stats))
        job.sig_cancelled.connect(lambda stats: self._on_finished(gen, "stopped", stats))
        job.sig_failed.connect(lambda message: self._on_failed(gen, message))
        self.current = gen
        self._flush.start()
        return mid

    def stop(self) -> None:
        """Ask the engine to stop; the reply ends (as `stopped`) when it confirms."""
        if self.current is not None:
            self.current.job.cancel()

    def abandon(self) -> None:
        """Stop now without waiting for the engine (window closing): the row becomes `stopped`."""
        gen = self.current
        if gen is not None:
            gen.job.cancel()
            self._end()
            self._finish(gen, "stopped", None, None)
        self._retry_unsaved()  # last chance: what still fails is logged
        for gen, *_ in self._unsaved:
            log.error("reply %s could not be saved; %d characters lost", gen.message_id, len(gen.writer.pending))

    def _end(self) -> None:
        self.current = None
        if not self._unsaved:
            self._flush.stop()

    def _finish(self, gen: Generation, status: str, stats: object, error: str | None) -> None:
        try:
            gen.writer.finish(status, stats, error)
        except StoreError as exc:
            self._unsaved.append((gen, status, stats, error))
            self._flush.start()
            self.sig_error.emit(exc.user_text())

    def _retry_unsaved(self) -> None:
        retry, self._unsaved = self._unsaved, []
        for gen, status, stats, error in retry:
            try:
                gen.writer.finish(status, stats, error)
            except StoreError as exc:
                self._unsaved.append((gen, status, stats, error))
                log.warning("reply %s still not saved: %s", gen.message_id, exc)

    def _flush_now(self) -> None:
        self._retry_unsaved()
        if self.current is None and not self._unsaved:
            self._flush.stop()
        if self.current is not None:
            try:
                self.current.writer.flush()
            except StoreError as exc:
                self.sig_error.emit(exc.user_text())

    # -- job signals (GUI thread) ----------------------------------------------------------------

    def _on_text(self, gen: Generation, text: str) -> None:
        if gen is not self.current:
            return  # a batch that was in flight when the reply was abandoned
        try:
            gen.writer.feed(text)
        except StoreError as exc:
            self.sig_error.emit(exc.user_text())
        self.sig_text.emit(gen.message_id, text)

    def _on_finished(self, gen: Generation, status: str, stats: GenerationStats) -> None:
        if gen is not self.current:
            return
        self._end()
        self._finish(gen, status, stats, None)
        self.sig_done.emit(gen.message_id, stats)

    def _on_failed(self, gen: Generation, message: str) -> None:
        if gen is not self.current:
            return
        self._end()
        self._finish(gen, "error", None, message)
        self.sig_failed.emit(gen.message_id, message)
