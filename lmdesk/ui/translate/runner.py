"""Drives a TranslationPlan through the engine, one chunk per request, on the GUI thread.

Only one chunk is in the engine's queue at a time, so a chat message sent meanwhile is answered
after the current chunk rather than after the whole document, and Stop has one request to cancel.
A stopped plan keeps its finished chunks: `resume()` continues from the first untranslated one.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal

from lmdesk.core.stats import GenerationStats
from lmdesk.core.translate.plan import TranslationPlan
from lmdesk.engine.bridge import EngineBridge, QtJob

log = logging.getLogger("lmdesk.ui")


class TranslationRunner(QObject):
    """Sends the chunks of a plan to the engine in order and reports each step."""

    sig_chunk_started = Signal(int, int, int)
    """(chunk index, 1-based ordinal among translated chunks, total) a chunk went to the model."""
    sig_text = Signal(str)
    """(text) more of the running chunk's answer streamed in (raw, not yet cleaned)."""
    sig_chunk_done = Signal(int, str)
    """(chunk index, output so far) a chunk's translation was accepted into the plan."""
    sig_stopped = Signal()
    """The user stopped the run; the plan keeps its finished chunks (resume() continues)."""
    sig_finished = Signal(str)
    """(output) every chunk is translated."""
    sig_failed = Signal(str)
    """(one-line message) a chunk failed; finished chunks are kept and resume() retries."""

    def __init__(self, bridge: EngineBridge, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.plan: TranslationPlan | None = None
        self.tokens = 0  # generated tokens of this plan, all runs together
        self.seconds = 0.0  # their generation time
        self._job: QtJob | None = None  # the running chunk's engine job
        self._index: int | None = None
        self._reply: list[str] = []
        self._stopping = False

    @property
    def running(self) -> bool:
        """A chunk is in the engine now."""
        return self._job is not None

    @property
    def job(self) -> QtJob | None:
        """The running chunk's engine job (None between chunks); its signals are the chunk's own."""
        return self._job

    @property
    def resumable(self) -> bool:
        """A plan is half done and nothing runs."""
        return self.plan is not None and not self.running and not self.plan.finished

    @property
    def tokens_per_second(self) -> float:
        """Generation throughput of this plan so far."""
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def start(self, plan: TranslationPlan) -> None:
        """Begin a new plan (stops nothing: call only when not running)."""
        if self.running:
            raise RuntimeError("a translation is already running")
        self.plan = plan
        self.tokens, self.seconds = 0, 0.0
        self._send_next()

    def resume(self) -> None:
        """Continue the current plan from its first untranslated chunk."""
        if self.resumable:
            self._send_next()

    def stop(self) -> None:
        """Cancel the running chunk; its partial answer is dropped, finished ones are kept."""
        if self._job is not None:
            self._stopping = True
            self._job.cancel()

    def reset(self) -> None:
        """Forget the plan (cancelling a running chunk)."""
        if self._job is not None:
            self._job.cancel()
        self._job = self._index = None
        self.plan = None
        self._stopping = False

    def _send_next(self) -> None:
        plan = self.plan
        assert plan is not None
        self._stopping = False
        index = plan.next_index()
        if index is None:
            self.sig_finished.emit(plan.output(partial=False))
            return
        self._index, self._reply = index, []
        job = self._job = self.bridge.generate(plan.messages(index), plan.params(index))
        job.sig_text.connect(lambda text: self._on_text(job, text))
        job.sig_finished.connect(lambda stats: self._on_finished(job, stats))
        job.sig_cancelled.connect(lambda stats: self._on_cancelled(job, stats))
        job.sig_failed.connect(lambda message: self._on_failed(job, message))
        self.sig_chunk_started.emit(index, plan.ordinal(index), plan.total)

    # -- job signals (GUI thread); a job that is no longer the running one was reset away --------
    def _on_text(self, job: QtJob, text: str) -> None:
        if job is self._job:
            self._reply.append(text)
            self.sig_text.emit(text)

    def _count(self, stats: GenerationStats | None) -> None:
        if stats is not None:
            self.tokens += stats.generated_tokens
            self.seconds += stats.generation_seconds

    def _on_cancelled(self, job: QtJob, stats: GenerationStats | None) -> None:
        if job is not self._job:
            return
        self._job = None
        self._count(stats)
        self._stopping = False
        self.sig_stopped.emit()

    def _on_finished(self, job: QtJob, stats: GenerationStats) -> None:
        if job is not self._job:
            return
        self._job = None
        plan, index = self.plan, self._index
        if plan is None or index is None:
            return
        self._count(stats)
        plan.accept(index, "".join(self._reply))
        self.sig_chunk_done.emit(index, plan.output(partial=True))
        if self._stopping:  # Stop came just as the chunk ended: keep it, then stop
            self._stopping = False
            self.sig_stopped.emit()
            return
        self._send_next()

    def _on_failed(self, job: QtJob, message: str) -> None:
        if job is not self._job:
            return
        self._job = None
        log.info("translation chunk %s failed: %s", self._index, message)
        self.sig_failed.emit(message)
