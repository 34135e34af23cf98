"""InferenceWorker driven directly (no Qt), with the fake backend and fake loader."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from lmdesk.backends.fake import FakeBackend
from lmdesk.core.errors import GenerationError, LmdeskError, ModelLoadError, NoModelLoadedError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions
from lmdesk.core.stats import GenerationStats
from lmdesk.engine.requests import GenerateRequest, LoadedModel, LoadRequest
from lmdesk.engine.worker import InferenceWorker

HELLO = [ChatMessage("user", "hello")]
WAIT = 30.0  # generous upper bound for waits; never a timing assertion


@dataclass
class Recorder:
    """WorkerEvents that records every call, with the thread it arrived on."""

    log: list[tuple] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)
    ended: dict[int, threading.Event] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    timeout: float = WAIT  # an upper bound against hangs, not a timing assertion

    def _add(self, *event) -> None:
        with self.lock:
            self.log.append(event)
            self.threads.add(threading.current_thread().name)

    def _end(self, req_id: int) -> None:
        self.done(req_id).set()

    def done(self, req_id: int) -> threading.Event:
        with self.lock:
            return self.ended.setdefault(req_id, threading.Event())

    def wait(self, req_id: int) -> None:
        assert self.done(req_id).wait(self.timeout), f"request {req_id} never ended: {self.log}"

    def of(self, req_id: int, kind: str | None = None) -> list[tuple]:
        with self.lock:
            return [e for e in self.log if e[1] == req_id and (kind is None or e[0] == kind)]

    def text(self, req_id: int) -> str:
        return "".join(e[2] for e in self.of(req_id, "text"))

    def on_started(self, req_id):
        self._add("started", req_id)

    def on_text(self, req_id, text):
        self._add("text", req_id, text)

    def on_finished(self, req_id, result):
        self._add("loaded" if isinstance(result, LoadedModel) else "finished", req_id, result)
        self._end(req_id)

    def on_failed(self, req_id, error):
        self._add("failed", req_id, error)
        self._end(req_id)

    def on_progress(self, req_id, fraction):
        self._add("progress", req_id, fraction)


@pytest.fixture
def events() -> Recorder:
    return Recorder()


@pytest.fixture
def worker(events):
    w = InferenceWorker(events)
    w.start()
    yield w
    assert w.shutdown(timeout=WAIT)
    assert not w.is_alive()


def loaded(worker: InferenceWorker, events: Recorder, path: str = "fake") -> LoadedModel:
    req_id = worker.submit(LoadRequest("fake", path))
    events.wait(req_id)
    (event,) = events.of(req_id, "loaded")
    return event[2]


def finished_stats(events: Recorder, req_id: int) -> GenerationStats:
    (event,) = events.of(req_id, "finished")
    return event[2]


def test_load_reports_progress_and_model_then_generates(worker, events):
    model = loaded(worker, events)
    assert model == worker.current_model
    assert (model.backend, model.path, model.name, model.device) == ("fake", "fake", "fake", "cpu")
    assert model.context_length == LoadOptions().n_ctx
    fractions = [e[2] for e in events.log if e[0] == "progress"]
    assert fractions and fractions == sorted(fractions) and fractions[-1] == 1.0

    req_id = worker.submit(GenerateRequest(HELLO, GenerationParams(seed=1)))
    events.wait(req_id)
    assert [e[0] for e in events.of(req_id)][0] == "started"
    assert events.text(req_id) == "Hello, world!"
    stats = finished_stats(events, req_id)
    assert stats.stop_reason == "stop" and stats.generated_tokens == 4
    assert events.threads == {"lmdesk-worker"}  # every callback ran on the worker thread


def test_requests_run_in_submission_order(worker, events):
    loaded(worker, events)
    ids = [worker.submit(GenerateRequest([ChatMessage("user", f"q{i}")])) for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    events.wait(ids[-1])
    starts = [e[1] for e in events.log if e[0] == "started" and e[1] in ids]
    ends = [e[1] for e in events.log if e[0] == "finished"]
    assert starts == ids and ends == ids
    # one request is fully over before the next starts
    kinds = [(e[0], e[1]) for e in events.log if e[1] in ids and e[0] in ("started", "finished")]
    assert kinds == [(k, i) for i in ids for k in ("started", "finished")]


def test_fast_tokens_are_batched_and_text_is_exact(events):
    pieces = tuple(f"t{i} " for i in range(20000))  # no delay: faster than any repaint rate
    backend = FakeBackend(pieces=pieces)
    w = InferenceWorker(events, loader=lambda *a: backend)
    w.start()
    try:
        events.wait(w.submit(LoadRequest("fake", "fast")))
        req_id = w.submit(GenerateRequest(HELLO, GenerationParams(max_tokens=len(pieces))))
        events.wait(req_id)
    finally:
        assert w.shutdown(WAIT)
    batches = events.of(req_id, "text")
    assert events.text(req_id) == "".join(pieces)
    assert batches[0][2] == pieces[0]  # the first piece goes out alone, at once
    assert len(batches) < len(pieces) / 10
    assert finished_stats(events, req_id).generated_tokens == len(pieces)
    assert backend.closed  # shutdown freed the model


def test_slow_tokens_each_go_out(events):
    """With pieces slower than the flush interval, nothing is held back."""
    w = InferenceWorker(events, flush_interval=0.0)
    w.start()
    try:
        events.wait(w.submit(LoadRequest("fake", "fake")))
        req_id = w.submit(GenerateRequest(HELLO))
        events.wait(req_id)
    finally:
        assert w.shutdown(WAIT)
    assert [e[2] for e in events.of(req_id, "text")] == ["Hello", ",", " world", "!"]


def test_cancel_running_request(worker, events):
    loaded(worker, events, "fake:slow")
    req_id = worker.submit(GenerateRequest(HELLO))
    first_text = threading.Event()
    original = events.on_text

    def on_text(rid, text):
        original(rid, text)
        first_text.set()

    events.on_text = on_text
    assert first_text.wait(WAIT)
    assert worker.cancel(req_id)
    events.wait(req_id)
    stats = finished_stats(events, req_id)
    assert stats.stop_reason == "cancelled"
    assert 1 <= stats.generated_tokens < 40
    assert events.text(req_id).startswith("word0 ")
    assert not worker.cancel(req_id)  # already ended


class GatedBackend(FakeBackend):
    """Holds its first generation until `gate` is set, so a test controls what is still queued."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.gate = threading.Event()

    def generate(self, messages, params, cancel):
        assert self.gate.wait(WAIT)
        yield from super().generate(messages, params, cancel)


def test_cancel_queued_request_never_touches_backend(events):
    backend = GatedBackend(pieces=tuple("abcdefghij"))
    w = InferenceWorker(events, loader=lambda *a: backend)
    w.start()
    try:
        events.wait(w.submit(LoadRequest("fake", "x")))
        running = w.submit(GenerateRequest([ChatMessage("user", "first")]))
        queued = w.submit(GenerateRequest([ChatMessage("user", "second")]))
        after = w.submit(GenerateRequest([ChatMessage("user", "third")]))
        assert w.cancel(queued)
        backend.gate.set()
        events.wait(after)
    finally:
        assert w.shutdown(WAIT)
    assert finished_stats(events, queued).stop_reason == "cancelled"
    assert events.of(queued, "started") == [] and events.of(queued, "text") == []
    assert [m[0].content for m in backend.calls] == ["first", "third"]
    assert finished_stats(events, running).stop_reason == "stop"
    assert events.text(after) == "abcdefghij"


def test_cancel_all(worker, events):
    loaded(worker, events, "fake:slow")
    ids = [worker.submit(GenerateRequest(HELLO)) for _ in range(3)]
    worker.cancel_all()
    for req_id in ids:
        events.wait(req_id)
        assert finished_stats(events, req_id).stop_reason == "cancelled"
    assert worker.pending_count == 0


def test_failed_load_keeps_old_model(worker, events):
    good = loaded(worker, events)
    bad = worker.submit(LoadRequest("fake", "fake:broken"))
    events.wait(bad)
    ((_, _, error),) = events.of(bad, "failed")
    assert isinstance(error, ModelLoadError) and "fake:broken" in error.user_text()
    assert worker.current_model == good
    req_id = worker.submit(GenerateRequest(HELLO))
    events.wait(req_id)
    assert events.text(req_id) == "Hello, world!"


def test_new_model_replaces_old_only_after_loading(events):
    backends: list[FakeBackend] = []
    closed_during_load: list[list[bool]] = []

    def loader(name, path, options, progress, cancel):
        closed_during_load.append([b.closed for b in backends])
        backends.append(FakeBackend(model_path=path))
        return backends[-1]

    w = InferenceWorker(events, loader=loader)
    w.start()
    try:
        events.wait(w.submit(LoadRequest("fake", "/models/one.gguf")))
        second = w.submit(LoadRequest("fake", "/models/two.gguf"))
        events.wait(second)
        assert w.current_model.name == "two"
    finally:
        assert w.shutdown(WAIT)
    assert closed_during_load == [[], [False]]  # the old model was still open during the load
    assert [b.closed for b in backends] == [True, True]


def test_unexpected_load_exception_becomes_model_load_error(events):
    def loader(*_args):
        raise ValueError("bad magic\nsecond line")

    w = InferenceWorker(events, loader=loader)
    w.start()
    try:
        req_id = w.submit(LoadRequest("llama", "/tmp/x.gguf"))
        events.wait(req_id)
    finally:
        assert w.shutdown(WAIT)
    ((_, _, error),) = events.of(req_id, "failed")
    assert isinstance(error, ModelLoadError)
    assert "/tmp/x.gguf" in error.user_text() and "\n" not in error.user_text()


def test_generate_without_model_fails_with_fix(worker, events):
    req_id = worker.submit(GenerateRequest(HELLO))
    events.wait(req_id)
    ((_, _, error),) = events.of(req_id, "failed")
    assert isinstance(error, NoModelLoadedError) and error.fix


class ExplodingBackend(FakeBackend):
    """A backend with a bug: raises a plain exception halfway."""

    def generate(self, messages, params, cancel) -> Iterator[str | GenerationStats]:
        yield "partial"
        raise ZeroDivisionError("division by zero")


def test_backend_exception_is_reported_and_worker_survives(events, caplog):
    backend = ExplodingBackend()
    w = InferenceWorker(events, loader=lambda *a: backend)
    w.start()
    try:
        events.wait(w.submit(LoadRequest("fake", "x")))
        bad = w.submit(GenerateRequest(HELLO))
        events.wait(bad)
        backend.__class__ = FakeBackend  # the next request works again
        good = w.submit(GenerateRequest(HELLO))
        events.wait(good)
    finally:
        assert w.shutdown(WAIT)
    ((_, _, error),) = events.of(bad, "failed")
    assert isinstance(error, GenerationError)
    assert "ZeroDivisionError" in error.user_text() and "\n" not in error.user_text()
    assert any(r.exc_info for r in caplog.records if r.name == "lmdesk.engine")  # traceback logged
    assert events.text(good) == "Hello, world!"


def test_typed_backend_error_passes_through(events):
    backend = FakeBackend(fail_after=1)  # raises GenerationError("…on purpose")
    w = InferenceWorker(events, loader=lambda *a: backend)
    w.start()
    try:
        events.wait(w.submit(LoadRequest("fake", "x")))
        req_id = w.submit(GenerateRequest(HELLO))
        events.wait(req_id)
    finally:
        assert w.shutdown(WAIT)
    ((_, _, error),) = events.of(req_id, "failed")
    assert error.message == "the fake model failed on purpose"


def test_exceptions_in_callbacks_do_not_kill_the_worker(worker, events, caplog):
    loaded(worker, events)

    def bad_text(req_id, text):
        raise RuntimeError("a buggy view")

    events.on_text = bad_text
    req_id = worker.submit(GenerateRequest(HELLO))
    events.wait(req_id)
    assert finished_stats(events, req_id).stop_reason == "stop"
    assert worker.is_alive()
    assert "a buggy view" in caplog.text


def test_shutdown_cancels_running_and_queued_and_is_idempotent(events):
    w = InferenceWorker(events)
    w.start()
    events.wait(w.submit(LoadRequest("fake", "fake:slow")))
    running = w.submit(GenerateRequest(HELLO))
    queued = w.submit(GenerateRequest(HELLO))
    assert w.shutdown(WAIT)
    assert not w.is_alive()
    for req_id in (running, queued):
        assert finished_stats(events, req_id).stop_reason == "cancelled"
    assert w.shutdown(WAIT)  # idempotent
    with pytest.raises(RuntimeError):
        w.submit(GenerateRequest(HELLO))


def test_shutdown_of_a_worker_never_started(events):
    w = InferenceWorker(events)
    req_id = w.submit(GenerateRequest(HELLO))
    assert w.shutdown(1.0)
    assert finished_stats(events, req_id).stop_reason == "cancelled"


def test_request_ids_are_unique_across_threads():
    ids: list[int] = []
    lock = threading.Lock()

    def make():
        local = [GenerateRequest(HELLO).id for _ in range(500)]
        with lock:
            ids.extend(local)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == len(ids) == 2000


def test_real_registry_loader_is_the_default(worker, events):
    """The default loader is lmdesk.backends.load_backend (so 'fake:…' paths work by name)."""
    loaded(worker, events, "fake:slow")
    assert worker.current_model.path == "fake:slow"


def test_loading_cancelled_while_queued(worker, events):
    loaded(worker, events, "fake:slow")
    blocker = worker.submit(GenerateRequest(HELLO))
    load = worker.submit(LoadRequest("fake", "fake"))
    worker.cancel(load)
    worker.cancel(blocker)
    events.wait(load)
    ((_, _, error),) = events.of(load, "failed")
    assert isinstance(error, LmdeskError) and "cancelled" in error.user_text()
    assert worker.current_model.path == "fake:slow"


class ExitingBackend(FakeBackend):
    """A backend whose library calls sys.exit() mid-stream (not an Exception subclass)."""

    def generate(self, messages, params, cancel) -> Iterator[str | GenerationStats]:
        yield "partial"
        raise SystemExit(3)


def test_a_base_exception_still_ends_the_request_once(events, caplog):
    """A request must end even when a BaseException escapes: the CLI and the GUI wait for it."""

    def loader(_name, path, *_rest):
        if path == "exits":
            raise SystemExit("a library gave up")
        return ExitingBackend()

    w = InferenceWorker(events, loader=loader)
    w.start()
    try:
        bad_load = w.submit(LoadRequest("fake", "exits"))
        events.wait(bad_load)
        events.wait(w.submit(LoadRequest("fake", "ok")))
        bad_gen = w.submit(GenerateRequest(HELLO))
        events.wait(bad_gen)
        assert w.is_alive()
    finally:
        assert w.shutdown(WAIT)
    ((_, _, load_error),) = events.of(bad_load, "failed")
    assert isinstance(load_error, ModelLoadError) and "SystemExit" in load_error.user_text()
    ((_, _, gen_error),) = events.of(bad_gen, "failed")
    assert isinstance(gen_error, GenerationError)
    assert not events.of(bad_gen, "finished")
    assert "crashed the worker loop" in caplog.text


def test_a_submit_racing_shutdown_still_ends(events):
    """shutdown() from another thread between submit's bookkeeping and its queue.put must not
    strand the request behind the shutdown sentinel, where no one would ever end it."""
    w = InferenceWorker(events)
    w.start()
    real_put = w._queue.put
    racers: list[threading.Thread] = []

    def put(item, *args, **kwargs):
        if isinstance(item, GenerateRequest) and not racers:
            racers.append(threading.Thread(target=w.shutdown, args=(WAIT,)))
            racers[0].start()
            racers[0].join(0.5)  # give the racing shutdown its chance to run first
        real_put(item, *args, **kwargs)

    w._queue.put = put  # type: ignore[method-assign]
    req_id = w.submit(GenerateRequest(HELLO))
    racers[0].join(WAIT)
    assert not w.is_alive()
    events.wait(req_id)  # it ended (cancelled, or failed for want of a model: either is an end)
    assert len(events.of(req_id, "finished") + events.of(req_id, "failed")) == 1
