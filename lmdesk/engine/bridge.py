"""EngineBridge: the ONLY place where threads meet Qt.

The InferenceWorker calls the WorkerEvents methods below on its own thread; each one only emits a
signal. The bridge lives on the GUI thread, so Qt delivers those signals to GUI-thread receivers by
queued connection: slots connected to the `sig_…` signals always run on the GUI thread and may
touch widgets. Nothing here waits for the model: every method returns at once.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import QCoreApplication, QObject, Signal, Slot

from lmdesk.core.errors import LmdeskError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions
from lmdesk.core.stats import GenerationStats
from lmdesk.engine.worker import (
    DEFAULT_FLUSH_INTERVAL,
    BackendLoaderFn,
    GenerateRequest,
    InferenceWorker,
    LoadedModel,
    LoadRequest,
    Request,
)

log = logging.getLogger("lmdesk.engine")


class EngineBridge(QObject):
    """Qt face of the inference worker: methods submit requests, signals report their progress."""

    sig_started = Signal(int)
    """(req_id) the worker began the request."""
    sig_chunk = Signal(int, str)
    """(req_id, text) a batch of generated text, at most ~60 per second."""
    sig_finished = Signal(int, str, object)
    """(req_id, stop reason "stop"/"length"/"cancelled", GenerationStats) a generation ended."""
    sig_failed = Signal(int, str)
    """(req_id, one-line message for the user) a generation or load failed; the engine still works."""
    sig_load_progress = Signal(int, float)
    """(req_id, fraction 0.0–1.0) a model load advanced."""
    sig_model_loaded = Signal(int, object)
    """(req_id, LoadedModel) a model is loaded and replaced the previous one."""
    sig_task_done = Signal(int, object)
    """(task_id, result) a background task from run_task() returned."""
    sig_task_failed = Signal(int, str)
    """(task_id, one-line message) a background task from run_task() raised."""

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        loader: BackendLoaderFn | None = None,
    ) -> None:
        super().__init__(parent)
        kwargs = {"flush_interval": flush_interval}
        if loader is not None:
            kwargs["loader"] = loader
        self._worker = InferenceWorker(self, **kwargs)  # type: ignore[arg-type]
        self._model: LoadedModel | None = None
        self._outstanding: set[int] = set()  # submitted, final signal not yet delivered (GUI thread)
        self._errors: dict[int, LmdeskError] = {}  # written on the worker thread, read on the GUI's
        self._errors_lock = threading.Lock()
        self._shut_down = False
        # Short file/CPU jobs (model discovery, chunk planning) — never the model, which is the
        # worker's alone. Callbacks are kept and called on the GUI thread only.
        self._tasks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lmdesk-task")
        self._task_ids = itertools.count(1)
        self._task_callbacks: dict[int, tuple[Callable | None, Callable | None]] = {}
        self.sig_task_done.connect(self._task_done)
        self.sig_task_failed.connect(self._task_failed)
        # Connected before anyone else's slots, so `model` and `busy` are current when they run.
        self.sig_model_loaded.connect(self._remember_model)
        self.sig_finished.connect(self._request_ended)
        self.sig_failed.connect(self._request_ended)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self._worker.start()

    # ---- public API (GUI thread) -------------------------------------------------------------

    @property
    def model(self) -> LoadedModel | None:
        """The last model loaded, as the GUI has been told of it (updated on the GUI thread)."""
        return self._model

    @property
    def busy(self) -> bool:
        """True while any submitted request has not yet delivered its final signal."""
        return bool(self._outstanding)

    @property
    def worker(self) -> InferenceWorker:
        """The worker thread (for tests and diagnostics; do not call its events)."""
        return self._worker

    def generate(self, messages: Sequence[ChatMessage], params: GenerationParams | None = None) -> int:
        """Queue a chat generation; returns its request id at once."""
        return self.submit(GenerateRequest(list(messages), params or GenerationParams()))

    def load_model(self, backend: str, path: str, options: LoadOptions | None = None) -> int:
        """Queue a model load (the current model keeps working if it fails); returns its id."""
        return self.submit(LoadRequest(backend, str(path), options or LoadOptions()))

    def submit(self, request: Request) -> int:
        """Queue any request; returns its id at once."""
        self._outstanding.add(request.id)
        try:
            return self._worker.submit(request)
        except RuntimeError:
            self._outstanding.discard(request.id)
            raise

    def cancel(self, req_id: int) -> None:
        """Stop a running or queued request (sets its Event; the worker checks it between tokens)."""
        self._worker.cancel(req_id)

    def cancel_all(self) -> None:
        """Stop every running and queued request."""
        self._worker.cancel_all()

    def run_task(
        self,
        fn: Callable[[], object],
        on_done: Callable[[object], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> int:
        """Run `fn()` off the GUI thread; `on_done(result)` or `on_error(message)` then runs on the
        GUI thread. Do not touch widgets from `fn`."""
        task_id = next(self._task_ids)
        self._task_callbacks[task_id] = (on_done, on_error)
        self._tasks.submit(self._run_task, task_id, fn)
        return task_id

    def _run_task(self, task_id: int, fn: Callable[[], object]) -> None:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - any failure becomes a message, never a dead thread
            log.warning("background task %d failed", task_id, exc_info=True)
            message = exc.user_text() if isinstance(exc, LmdeskError) else f"{type(exc).__name__}: {exc}"
            self.sig_task_failed.emit(task_id, message)
        else:
            self.sig_task_done.emit(task_id, result)

    def _task_done(self, task_id: int, result: object) -> None:
        on_done, _ = self._task_callbacks.pop(task_id, (None, None))
        if on_done is not None:
            on_done(result)

    def _task_failed(self, task_id: int, message: str) -> None:
        _, on_error = self._task_callbacks.pop(task_id, (None, None))
        if on_error is not None:
            on_error(message)

    def last_error(self, req_id: int) -> LmdeskError | None:
        """The typed error behind a sig_failed, for views that want its class or `fix`."""
        with self._errors_lock:
            return self._errors.get(req_id)

    @Slot()
    def shutdown(self, timeout: float = 5.0) -> bool:
        """Cancel everything, stop the worker and free the model (idempotent)."""
        if self._shut_down:
            return not self._worker.is_alive()
        self._shut_down = True
        self._tasks.shutdown(wait=True, cancel_futures=True)
        return self._worker.shutdown(timeout)

    # ---- GUI-thread bookkeeping --------------------------------------------------------------

    @Slot(int, object)
    def _remember_model(self, req_id: int, model: LoadedModel) -> None:
        self._model = model
        self._outstanding.discard(req_id)

    def _request_ended(self, req_id: int, *_args: object) -> None:
        self._outstanding.discard(req_id)
        with self._errors_lock:
            if len(self._errors) > 100:  # keep only recent errors
                for key in sorted(self._errors)[:-50]:
                    del self._errors[key]

    # ---- WorkerEvents: called on the worker thread; emit only, touch nothing else --------------

    def on_started(self, req_id: int) -> None:
        self.sig_started.emit(req_id)

    def on_chunk(self, req_id: int, text: str) -> None:
        self.sig_chunk.emit(req_id, text)

    def on_finished(self, req_id: int, stats: GenerationStats) -> None:
        self.sig_finished.emit(req_id, stats.stop_reason, stats)

    def on_failed(self, req_id: int, error: LmdeskError) -> None:
        with self._errors_lock:
            self._errors[req_id] = error
        self.sig_failed.emit(req_id, error.user_text())

    def on_load_progress(self, req_id: int, fraction: float) -> None:
        self.sig_load_progress.emit(req_id, fraction)

    def on_model_loaded(self, req_id: int, model: LoadedModel) -> None:
        self.sig_model_loaded.emit(req_id, model)
