"""The inference worker: one plain thread that owns a slot's loaded model and a FIFO of requests.

No Qt here (engine/bridge.py is the only place where threads meet Qt). Every WorkerEvents callback
runs ON THE WORKER THREAD: an implementation must not touch the GUI from it, only hand the value
on (engine/router.py hands it to the request's Job). Cancel is a threading.Event on each request,
set directly by the caller, because a worker busy in the model's token loop never looks at a queue
of commands.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from lmdesk.backends import load_backend
from lmdesk.backends.base import Backend, Capabilities
from lmdesk.core.errors import GenerationError, LmdeskError, ModelLoadError, NoModelLoadedError
from lmdesk.core.stats import GenerationStats
from lmdesk.engine.requests import (
    CountRequest, GenerateRequest, LoadedModel, LoadRequest, Request, TokenCount, model_name,
)

log = logging.getLogger("lmdesk.engine")

DEFAULT_FLUSH_INTERVAL = 1 / 60  # a repaint rate: faster batches only cost the GUI thread work


class WorkerEvents(Protocol):
    """Life-cycle callbacks of requests; all are called on the worker thread.

    Each request ends with exactly one of on_finished / on_failed. on_finished carries the result:
    GenerationStats for a generation (stop_reason "cancelled" when it was stopped), LoadedModel for
    a load, TokenCount for a count. on_started comes first, unless the request was cancelled while
    still queued (it then ends at once, without on_started).
    """

    def on_started(self, req_id: int) -> None: ...

    def on_text(self, req_id: int, text: str) -> None: ...

    def on_progress(self, req_id: int, fraction: float) -> None: ...

    def on_finished(self, req_id: int, result: object) -> None: ...

    def on_failed(self, req_id: int, error: LmdeskError) -> None: ...


BackendLoaderFn = Callable[..., Backend]
_SHUTDOWN = object()  # queue sentinel
_WAKE = object()  # queue item that only makes an idle worker serve its quick requests


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:300]


class InferenceWorker(threading.Thread):
    """Runs one slot's requests one at a time, in submission order, on a thread that owns the backend."""

    def __init__(
        self,
        events: WorkerEvents,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        loader: BackendLoaderFn = load_backend,
        name: str = "lmdesk-worker",
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._events = events
        self._flush_interval = flush_interval
        self._loader = loader
        self._queue: queue.Queue[object] = queue.Queue()
        self._quick: collections.deque[CountRequest] = collections.deque()  # served ahead of the queue
        self._pending: dict[int, Request] = {}  # submitted, not yet ended; guarded by _lock
        self._lock = threading.Lock()
        self._backend: Backend | None = None  # touched only on the worker thread (or after join)
        self._model: LoadedModel | None = None
        self._closing = False
        self._ended: set[int] = set()  # requests whose final event was sent (worker thread only)

    # ---- called from any thread -------------------------------------------------------------

    @property
    def current_model(self) -> LoadedModel | None:
        """The model loaded now (None before the first successful load)."""
        return self._model

    @property
    def pending_count(self) -> int:
        """Requests submitted and not yet ended (queued plus running)."""
        with self._lock:
            return len(self._pending)

    def submit(self, request: Request) -> int:
        """Queue a request and return its id at once."""
        with self._lock:
            if self._closing:
                raise RuntimeError("the inference worker has been shut down")
            self._pending[request.id] = request
            # Put under the lock: a shutdown() racing this call then puts its sentinel after the
            # request, so the worker still ends it (a request behind the sentinel never would be).
            if isinstance(request, CountRequest):
                self._quick.append(request)
                self._queue.put(_WAKE)
            else:
                self._queue.put(request)
        return request.id

    def cancel(self, req_id: int) -> bool:
        """Cancel a running or queued request; False if it is unknown or already ended."""
        with self._lock:
            request = self._pending.get(req_id)
        if request is None:
            return False
        request.cancel.set()
        return True

    def cancel_all(self) -> None:
        """Cancel every queued and running request."""
        with self._lock:
            requests = list(self._pending.values())
        for request in requests:
            request.cancel.set()

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Cancel all, stop the thread and free the model; True when the thread has ended.

        Idempotent. The backend is closed by the worker thread itself as its last act, never from
        here while it may still be generating (freeing a llama.cpp model mid-decode crashes).
        """
        with self._lock:
            first = not self._closing
            self._closing = True
        self.cancel_all()
        if not self.is_alive() and self.ident is None:  # never started: nothing will drain the queue
            self._drain_cancelled()
            self._close_backend()
            return True
        if first:
            self._queue.put(_SHUTDOWN)
        if threading.current_thread() is self:  # from an events callback: the loop ends by itself
            return False
        self.join(timeout)
        if self.is_alive():
            log.warning("inference worker still busy %.1f s after shutdown; leaving it (daemon)", timeout)
            return False
        return True

    # ---- the worker thread -------------------------------------------------------------------

    def run(self) -> None:
        log.debug("%s started", self.name)
        try:
            while True:
                item = self._queue.get()
                self._serve_quick()
                if item is _SHUTDOWN:
                    break
                if item is not _WAKE:
                    self._run_one(item)  # type: ignore[arg-type]
            self._drain_cancelled()
        finally:
            self._close_backend()
            log.debug("%s stopped", self.name)

    def _run_one(self, request: Request) -> None:
        try:
            if isinstance(request, LoadRequest):
                self._load(request)
            elif isinstance(request, CountRequest):
                self._count(request)
            else:
                self._generate(request)
        except BaseException as exc:  # noqa: BLE001 — the loop must survive anything a request does
            log.exception("request %s crashed the worker loop", request.id)
            if request.id not in self._ended:  # its caller must not wait for an end that never comes
                error_type = ModelLoadError if isinstance(request, LoadRequest) else GenerationError
                message = f"internal error: {type(exc).__name__}: {_one_line(exc)}".rstrip(": ")
                self._emit_end("on_failed", request.id, error_type(message, "see the log for details"))
        finally:
            self._ended.discard(request.id)
            with self._lock:
                self._pending.pop(request.id, None)

    def _serve_quick(self) -> None:
        """Run the quick requests waiting now (counts), between two steps of anything else."""
        while self._quick:
            try:
                request = self._quick.popleft()
            except IndexError:
                return
            self._run_one(request)

    def _drain_cancelled(self) -> None:
        """End requests left in the queue at shutdown, so each still gets its one final event."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _SHUTDOWN and item is not _WAKE:
                item.cancel.set()  # type: ignore[union-attr]
                self._run_one(item)  # type: ignore[arg-type]
        for request in list(self._quick):
            request.cancel.set()
        self._serve_quick()

    def _emit(self, name: str, *args: object) -> None:
        """Call an events callback; its exceptions are logged, never allowed to stop the worker."""
        try:
            getattr(self._events, name)(*args)
        except Exception:  # noqa: BLE001
            log.exception("events.%s raised; ignored", name)

    def _emit_end(self, name: str, req_id: int, value: object) -> None:
        """Send a request's one final event (on_finished or on_failed)."""
        self._ended.add(req_id)
        self._emit(name, req_id, value)

    # ---- loading -----------------------------------------------------------------------------

    def _load(self, req: LoadRequest) -> None:
        if req.cancel.is_set():
            self._emit_end("on_failed", req.id, ModelLoadError(f"loading {model_name(req.path)} was cancelled"))
            return
        self._emit("on_started", req.id)
        last = -1.0

        def progress(fraction: float) -> None:
            nonlocal last
            # llama.cpp reports once per tensor (hundreds of calls): pass on whole percents only.
            if fraction >= 1.0 or fraction - last >= 0.01:
                last = fraction
                self._emit("on_progress", req.id, float(fraction))

        log.info("loading %s model %s", req.backend, req.path)
        started = time.perf_counter()
        try:
            backend = self._loader(req.backend, req.path, req.options, progress, req.cancel)
        except LmdeskError as exc:
            log.info("load of %s failed: %s", req.path, exc.user_text(), exc_info=log.isEnabledFor(logging.DEBUG))
            self._emit_end("on_failed", req.id, exc)
            return
        except Exception as exc:  # noqa: BLE001 — a backend bug must not look like a crash to users
            log.exception("unexpected error loading %s", req.path)
            self._emit_end("on_failed", req.id, ModelLoadError(f"could not load {req.path}: {_one_line(exc) or type(exc).__name__}"))
            return
        if req.cancel.is_set():  # cancelled after the loader's last check: keep the old model
            _close_quietly(backend)
            self._emit_end("on_failed", req.id, ModelLoadError(f"loading {model_name(req.path)} was cancelled"))
            return
        old, self._backend = self._backend, backend  # the new one is complete before the old goes
        if old is not None:
            _close_quietly(old)
        self._model = LoadedModel(
            backend=req.backend,
            path=req.path,
            name=model_name(req.path),
            context_length=int(getattr(backend, "context_length", 0) or 0),
            device=str(getattr(backend, "device", "cpu")),
            capabilities=getattr(backend, "capabilities", None) or Capabilities(),
            dtype=getattr(backend, "dtype", None),
        )
        log.info("loaded %s in %.2f s", req.path, time.perf_counter() - started)
        if last < 1.0:
            self._emit("on_progress", req.id, 1.0)
        self._emit_end("on_finished", req.id, self._model)

    def _close_backend(self) -> None:
        backend, self._backend = self._backend, None
        self._model = None
        if backend is not None:
            _close_quietly(backend)

    # ---- counting ----------------------------------------------------------------------------

    def _count(self, req: CountRequest) -> None:
        backend, model = self._backend, self._model
        if req.cancel.is_set():
            self._emit_end("on_failed", req.id, GenerationError("the token count was cancelled"))
            return
        if backend is None or model is None:
            self._emit_end("on_failed", req.id, NoModelLoadedError("no model is loaded"))
            return
        try:
            tokens = backend.count_tokens(req.messages)
        except LmdeskError as exc:
            self._emit_end("on_failed", req.id, exc)
            return
        self._emit_end("on_finished", req.id, TokenCount(int(tokens), model.context_length, model.name))

    # ---- generation --------------------------------------------------------------------------

    def _generate(self, req: GenerateRequest) -> None:
        if req.cancel.is_set():  # cancelled while queued: never touch the backend
            self._emit_end("on_finished", req.id, GenerationStats(stop_reason="cancelled"))
            return
        self._emit("on_started", req.id)
        backend = self._backend
        if backend is None:
            self._emit_end(
                "on_failed",
                req.id,
                NoModelLoadedError("no model is loaded", "choose a model first (or wait until it has loaded)"),
            )
            return
        stream: Iterator[str | GenerationStats] | None = None
        try:
            stream = backend.generate(req.messages, req.params, req.cancel)
            stats = self._stream(req, stream)
        except LmdeskError as exc:  # a typed error the backend chose (context overflow, …)
            log.info("generation %s failed: %s", req.id, exc.user_text())
            self._emit_end("on_failed", req.id, exc)
            return
        except Exception as exc:  # noqa: BLE001
            log.exception("generation %s failed unexpectedly", req.id)
            message = f"generation failed: {type(exc).__name__}: {_one_line(exc)}".rstrip(": ")
            self._emit_end("on_failed", req.id, GenerationError(message, "see the log for details"))
            return
        finally:
            close = getattr(stream, "close", None) if stream is not None else None
            if close is not None:
                try:
                    close()  # runs the generator's finally blocks now, not at garbage collection
                except Exception:  # noqa: BLE001
                    log.exception("closing the generator of request %s failed", req.id)
        self._emit_end("on_finished", req.id, stats)

    def _stream(self, req: GenerateRequest, stream: Iterator[str | GenerationStats]) -> GenerationStats:
        """Pass text on in batches: the first piece at once, then at most one batch per interval.

        Quick requests (counts) are served between batches, while the generator is suspended."""
        stats: GenerationStats | None = None
        pieces: list[str] = []
        last_flush: float | None = None
        quick = self._quick
        for item in stream:
            if isinstance(item, GenerationStats):
                stats = item
                continue
            if not item:
                continue
            pieces.append(item)
            now = time.monotonic()
            if last_flush is None or now - last_flush >= self._flush_interval:
                self._emit("on_text", req.id, "".join(pieces))
                pieces.clear()
                last_flush = now
                if quick:
                    self._serve_quick()
        if pieces:
            self._emit("on_text", req.id, "".join(pieces))
        if stats is None:  # a backend that forgot its stats must not leave the GUI waiting
            stats = GenerationStats(stop_reason="cancelled" if req.cancel.is_set() else "stop")
        return stats


def _close_quietly(backend: Backend) -> None:
    try:
        backend.close()
    except Exception:  # noqa: BLE001 — freeing memory must not turn a good load into a failure
        log.exception("closing backend %s failed", getattr(backend, "model_path", backend))
