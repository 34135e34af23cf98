"""TokenCounter: exact prompt token counts from the loaded model, debounced while the user types."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, QTimer, Signal

from lmdesk.core.messages import ChatMessage
from lmdesk.engine.bridge import EngineBridge, QtJob

DEBOUNCE_MS = 250  # counting on every keystroke would only queue work that the next one replaces


class TokenCounter(QObject):
    """Counts one or more prompts with the model's own tokenizer and template, off the GUI thread.

    `request(build)` (re)starts a short timer; when it fires, `build()` gives the prompts to count
    and one count job per prompt goes to the engine. Only the newest request's answer is emitted.
    """

    sig_counted = Signal(list)
    """(list of TokenCount, one per prompt) exact counts for the newest request."""

    def __init__(self, bridge: EngineBridge, parent: QObject | None = None, delay_ms: int = DEBOUNCE_MS) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self._build: Callable[[], Sequence[list[ChatMessage]]] | None = None
        self._jobs: list[QtJob] = []
        self._results: dict[int, object] = {}
        self._timer = QTimer(self, singleShot=True, interval=delay_ms)
        self._timer.timeout.connect(self._count)

    def request(self, build: Callable[[], Sequence[list[ChatMessage]]]) -> None:
        """Count the prompts `build()` returns, once the user pauses."""
        self._build = build
        self._timer.start()

    def _count(self) -> None:
        if self._build is None or self.bridge.model is None:
            return
        for job in self._jobs:
            job.cancel()  # superseded: a queued count then never runs
        self._results = {}
        try:
            self._jobs = [self.bridge.count_tokens(messages) for messages in self._build()]
        except RuntimeError:  # the engine has shut down (window closing)
            self._jobs = []
            return
        for job in self._jobs:
            job.sig_finished.connect(lambda count, j=job: self._counted(j, count))

    def _counted(self, job: QtJob, count: object) -> None:
        if job not in self._jobs:
            return  # an answer to an older request
        self._results[job.id] = count
        if len(self._results) == len(self._jobs):
            self.sig_counted.emit([self._results[j.id] for j in self._jobs])
