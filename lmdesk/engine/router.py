"""EventRouter: the one WorkerEvents implementation; hands each event to the Job it belongs to.

Every method runs on a worker thread. It looks the job up by request id and calls
`Job.deliver`, which records the event and passes it to the job's listeners (the bridge's Qt job,
or nobody for a headless caller that reads the job itself).
"""

from __future__ import annotations

import logging
import threading

from lmdesk.core.errors import LmdeskError
from lmdesk.engine.jobs import Job

log = logging.getLogger("lmdesk.engine")


class EventRouter:
    """Routes worker events to jobs by request id; a job is forgotten after its final event."""

    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._lock = threading.Lock()

    def track(self, job: Job) -> None:
        """Route the events of `job.id` to `job` from now on (call before submitting it)."""
        with self._lock:
            self._jobs[job.id] = job

    def forget(self, job: Job) -> None:
        """Stop routing to `job` (its request was never queued)."""
        with self._lock:
            self._jobs.pop(job.id, None)

    @property
    def active(self) -> list[Job]:
        """Jobs that have not ended yet."""
        with self._lock:
            return list(self._jobs.values())

    def _job(self, req_id: int, final: bool = False) -> Job | None:
        with self._lock:
            job = self._jobs.pop(req_id, None) if final else self._jobs.get(req_id)
        if job is None:
            log.warning("event for unknown request %s dropped", req_id)
        return job

    # ---- WorkerEvents (worker thread) --------------------------------------------------------

    def on_started(self, req_id: int) -> None:
        if job := self._job(req_id):
            job.deliver("started", None)

    def on_text(self, req_id: int, text: str) -> None:
        if job := self._job(req_id):
            job.deliver("text", text)

    def on_progress(self, req_id: int, fraction: float) -> None:
        if job := self._job(req_id):
            job.deliver("progress", fraction)

    def on_finished(self, req_id: int, result: object) -> None:
        if job := self._job(req_id, final=True):
            job.deliver("finished", result)

    def on_failed(self, req_id: int, error: LmdeskError) -> None:
        if job := self._job(req_id, final=True):
            job.deliver("failed", error)
