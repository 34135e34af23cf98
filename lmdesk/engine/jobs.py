"""Job: the handle a caller gets for one engine request. No Qt here.

Headless callers (the CLI, the benchmarks, the API server) use a job as a blocking iterator:
`for text in job` yields the reply as it streams, `job.result()` waits for the end, `job.cancel()`
stops it. The Qt side (engine/bridge.py) wraps the same job in a QObject with signals. Events
arrive on the worker thread through `deliver()`; everything here is safe to call from any thread.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Iterator

from lmdesk.core.errors import LmdeskError
from lmdesk.core.stats import GenerationStats
from lmdesk.engine.requests import GenerateRequest, Reply, Request

log = logging.getLogger("lmdesk.engine")

# A listener receives (kind, value) on the worker thread; kinds: "started" (None), "text" (str),
# "progress" (float), "finished" (the result), "failed" (LmdeskError), "cancelled" (the result:
# GenerationStats of the stopped generation, or None for a load).
Listener = Callable[[str, object], None]
FINAL_KINDS = frozenset({"finished", "failed", "cancelled"})


class JobState(enum.Enum):
    """Where a job is in its life: queued → running → one of the three ends."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobCancelled(Exception):
    """`result()` of a load or count that was cancelled: there is no result to give."""


class Job:
    """One request's handle: its state, its streamed text, its result, and cancel()."""

    def __init__(self, request: Request, slot: str) -> None:
        self.request = request
        self.id = request.id
        self.slot = slot
        self.state = JobState.QUEUED
        self.error: LmdeskError | None = None
        self._result: object = None
        self._pieces: list[str] = []
        self._cond = threading.Condition()
        self._listeners: list[Listener] = []

    def __repr__(self) -> str:
        return f"<Job {self.id} {type(self.request).__name__} slot={self.slot!r} {self.state.value}>"

    # ---- any thread --------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """The job has ended (finished, failed or cancelled)."""
        return self.state in (JobState.FINISHED, JobState.FAILED, JobState.CANCELLED)

    @property
    def text(self) -> str:
        """The text streamed so far."""
        with self._cond:
            return "".join(self._pieces)

    def cancel(self) -> None:
        """Stop the request: a queued one never starts, a running one stops at the next token."""
        self.request.cancel.set()

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(kind, value)` for each later event, on the worker thread."""
        with self._cond:
            self._listeners.append(listener)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends; False if `timeout` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self.done, timeout)

    def result(self, timeout: float | None = None) -> object:
        """Wait for the end and return the result; raises the job's LmdeskError if it failed.

        A generation gives a Reply (also when cancelled: the text so far, stop_reason
        "cancelled"); a load gives the LoadedModel; a count its TokenCount. A cancelled load or
        count raises JobCancelled. TimeoutError if `timeout` passes first.
        """
        if not self.wait(timeout):
            raise TimeoutError(f"job {self.id} did not end within {timeout} s")
        if self.state is JobState.FAILED:
            assert self.error is not None
            raise self.error
        if isinstance(self.request, GenerateRequest):
            return Reply(self.text, self._result)  # type: ignore[arg-type]
        if self.state is JobState.CANCELLED:
            raise JobCancelled(f"job {self.id} was cancelled")
        return self._result

    def __iter__(self) -> Iterator[str]:
        """The streamed text, piece by piece, as it arrives; raises the error if the job failed."""
        index = 0
        while True:
            with self._cond:
                # A timed wait so a Ctrl+C handler on the main thread gets to run promptly.
                while index >= len(self._pieces) and not self.done:
                    self._cond.wait(0.25)
                pieces = self._pieces[index:]
                index += len(pieces)
                ended = self.done and index >= len(self._pieces)
            yield from pieces
            if ended:
                break
        if self.state is JobState.FAILED and self.error is not None:
            raise self.error

    # ---- the worker thread (through the router) ----------------------------------------------

    def deliver(self, kind: str, value: object) -> None:
        """Record one event from the worker and pass it to the listeners."""
        if kind == "finished" and isinstance(value, GenerationStats) and value.stop_reason == "cancelled":
            kind = "cancelled"  # a stopped generation: its stats say how far it got
        elif kind == "failed" and not isinstance(self.request, GenerateRequest) and self.request.cancel.is_set():
            kind, value = "cancelled", None  # a load or count the caller cancelled is not an error
        with self._cond:
            if kind == "started":
                self.state = JobState.RUNNING
            elif kind == "text":
                self._pieces.append(value)  # type: ignore[arg-type]
            elif kind == "finished":
                self.state, self._result = JobState.FINISHED, value
            elif kind == "cancelled":
                self.state, self._result = JobState.CANCELLED, value
            elif kind == "failed":
                self.state, self.error = JobState.FAILED, value  # type: ignore[assignment]
            listeners = list(self._listeners)
            if kind == "text" or kind in FINAL_KINDS:
                self._cond.notify_all()  # wakes iterators and result() waiters
        for listener in listeners:
            try:
                listener(kind, value)
            except Exception:  # noqa: BLE001 — a listener's bug must not stop the worker
                log.exception("job %s listener failed on %s", self.id, kind)
