"""EngineBridge: the ONLY place where threads meet Qt.

Each request submitted here returns a QtJob, a small QObject with the job's own signals; a view
connects to its job and to nothing else, so it never sees another view's text. Worker threads hand
events to the bridge through one queued signal; the bridge re-emits them on the job, on the GUI
thread, so every slot connected to a QtJob (or to the bridge) runs on the GUI thread and may touch
widgets. A job's events are held until the GUI thread returns to its event loop, so connecting to
a job right after submitting it never misses its first event. Nothing here waits for the model.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, Signal, Slot

from lmdesk.core.errors import LmdeskError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions
from lmdesk.engine.engine import MAIN_SLOT, Engine
from lmdesk.engine.jobs import Job
from lmdesk.engine.requests import CountRequest, GenerateRequest, LoadedModel, LoadRequest, Request
from lmdesk.engine.worker import DEFAULT_FLUSH_INTERVAL, BackendLoaderFn

log = logging.getLogger("lmdesk.engine")


class QtJob(QObject):
    """Qt face of one engine job: its signals arrive on the GUI thread; cancel() stops it."""

    sig_started = Signal()
    """The worker began the request."""
    sig_text = Signal(str)
    """(text) a batch of generated text, at most ~60 per second."""
    sig_progress = Signal(float)
    """(fraction 0.0–1.0) a model load advanced."""
    sig_finished = Signal(object)
    """(result) the job ended normally: GenerationStats, LoadedModel or TokenCount."""
    sig_failed = Signal(str)
    """(one-line message for the user) the job failed; `error` holds the typed error."""
    sig_cancelled = Signal(object)
    """(GenerationStats of the stopped generation, or None) the job was cancelled."""

    def __init__(self, request: Request, slot: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.request = request
        self.slot = slot
        self.job: Job | None = None  # set by the bridge right after submitting
        self.ended = False  # the final signal has been emitted (GUI thread)

    @property
    def id(self) -> int:
        """The request id (unique in the process)."""
        return self.request.id

    @property
    def error(self) -> LmdeskError | None:
        """The typed error behind sig_failed, for views that want its class or `fix`."""
        return self.job.error if self.job is not None else None

    @property
    def text(self) -> str:
        """The text streamed so far."""
        return self.job.text if self.job is not None else ""

    def cancel(self) -> None:
        """Stop the request (sets its Event; the worker checks it between tokens)."""
        self.request.cancel.set()


class EngineBridge(QObject):
    """Qt face of the engine: methods submit requests and return QtJobs; model changes are signals."""

    sig_model_changed = Signal(str, object)
    """(slot, LoadedModel) a model was loaded into a slot and replaced its previous one."""
    _sig_event = Signal(object, str, object)
    """(QtJob, kind, value) a worker event on its way to the GUI thread (private)."""
    _sig_background_done = Signal(int, object)
    """(call id, result) a background call returned (private)."""
    _sig_background_failed = Signal(int, str)
    """(call id, one-line message) a background call raised (private)."""

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        loader: BackendLoaderFn | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        super().__init__(parent)
        kwargs: dict = {"flush_interval": flush_interval, "cache_dir": cache_dir}
        if loader is not None:
            kwargs["loader"] = loader
        self._engine = Engine(**kwargs)
        self._models: dict[str, LoadedModel] = {}  # as the GUI has been told (GUI thread)
        self._jobs: dict[int, QtJob] = {}  # submitted, final signal not yet emitted (GUI thread)
        self._shut_down = False
        # Short file/CPU work (model discovery, chunk planning, export) — never the model, which is
        # the workers' alone. Callbacks are kept and called on the GUI thread only.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lmdesk-background")
        self._call_ids = itertools.count(1)
        self._callbacks: dict[int, tuple[Callable | None, Callable | None]] = {}
        self._sig_event.connect(self._dispatch)
        self._sig_background_done.connect(self._background_done)
        self._sig_background_failed.connect(self._background_failed)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self._engine.worker(MAIN_SLOT)  # start the main slot's thread now, not on the first click

    # ---- public API (GUI thread) -------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The headless engine behind the bridge (for tests and diagnostics)."""
        return self._engine

    @property
    def model(self) -> LoadedModel | None:
        """The main slot's model, as the GUI has been told of it."""
        return self._models.get(MAIN_SLOT)

    def model_in(self, slot: str) -> LoadedModel | None:
        """The model of `slot`, as the GUI has been told of it."""
        return self._models.get(slot)

    def loading(self, slot: str = MAIN_SLOT) -> bool:
        """A model load into `slot` is queued or running (a generation submitted now runs after it)."""
        return any(isinstance(j.request, LoadRequest) and j.slot == slot for j in self._jobs.values())

    @property
    def busy(self) -> bool:
        """True while any submitted job has not yet delivered its final signal."""
        return bool(self._jobs)

    def generate(self, messages: Sequence[ChatMessage], params: GenerationParams | None = None,
                 slot: str = MAIN_SLOT) -> QtJob:
        """Queue a chat generation; returns its job at once."""
        return self.submit(GenerateRequest(list(messages), params or GenerationParams()), slot)

    def load_model(self, backend: str, path: str, options: LoadOptions | None = None,
                   slot: str = MAIN_SLOT) -> QtJob:
        """Queue a model load (the slot's current model keeps working if it fails)."""
        return self.submit(LoadRequest(backend, str(path), options or LoadOptions()), slot)

    def count_tokens(self, messages: Sequence[ChatMessage], slot: str = MAIN_SLOT) -> QtJob:
        """Count the prompt tokens of `messages` with the slot model's tokenizer (finished: TokenCount)."""
        return self.submit(CountRequest(list(messages)), slot)

    def submit(self, request: Request, slot: str = MAIN_SLOT) -> QtJob:
        """Queue any request on `slot`; returns its job at once (RuntimeError after shutdown)."""
        # No Qt parent: a job lives as long as someone holds it (the bridge does until its end),
        # so the many short count jobs of a long session do not pile up as children.
        qjob = QtJob(request, slot)
        qjob.job = self._engine.submit(request, slot, lambda kind, value: self._sig_event.emit(qjob, kind, value))
        self._jobs[request.id] = qjob
        return qjob

    def cancel_all(self) -> None:
        """Stop every running and queued request."""
        self._engine.cancel_all()

    def call_in_background(
        self,
        fn: Callable[[], object],
        on_done: Callable[[object], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> int:
        """Run `fn()` off the GUI thread; `on_done(result)` or `on_error(message)` then runs on the
        GUI thread. Do not touch widgets from `fn`."""
        call_id = next(self._call_ids)
        self._callbacks[call_id] = (on_done, on_error)
        self._pool.submit(self._run_background, call_id, fn)
        return call_id

    @Slot()
    def shutdown(self, timeout: float = 5.0) -> bool:
        """Cancel everything, stop the workers and free the models (idempotent)."""
        if self._shut_down:
            return not self._engine.running
        self._shut_down = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        return self._engine.shutdown(timeout)

    # ---- GUI thread --------------------------------------------------------------------------

    def _dispatch(self, qjob: QtJob, kind: str, value: object) -> None:
        if kind == "text":
            qjob.sig_text.emit(value)
        elif kind == "progress":
            qjob.sig_progress.emit(value)
        elif kind == "started":
            qjob.sig_started.emit()
        else:  # a final event: bookkeeping first, so `model` and `busy` are current in the slots
            qjob.ended = True
            self._jobs.pop(qjob.id, None)
            if kind == "finished":
                if isinstance(value, LoadedModel):
                    self._models[qjob.slot] = value
                    self.sig_model_changed.emit(qjob.slot, value)
                qjob.sig_finished.emit(value)
            elif kind == "cancelled":
                qjob.sig_cancelled.emit(value)
            else:
                qjob.sig_failed.emit(value.user_text() if isinstance(value, LmdeskError) else str(value))

    def _run_background(self, call_id: int, fn: Callable[[], object]) -> None:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - any failure becomes a message, never a dead thread
            log.warning("background call %d failed", call_id, exc_info=True)
            message = exc.user_text() if isinstance(exc, LmdeskError) else f"{type(exc).__name__}: {exc}"
            self._sig_background_failed.emit(call_id, message)
        else:
            self._sig_background_done.emit(call_id, result)

    def _background_done(self, call_id: int, result: object) -> None:
        on_done, _ = self._callbacks.pop(call_id, (None, None))
        if on_done is not None:
            on_done(result)

    def _background_failed(self, call_id: int, message: str) -> None:
        _, on_error = self._callbacks.pop(call_id, (None, None))
        if on_error is not None:
            on_error(message)
