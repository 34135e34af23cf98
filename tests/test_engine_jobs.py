"""The headless engine: jobs as blocking iterators, results, cancel, slots. No Qt."""

from __future__ import annotations

import threading

import pytest

from lmdesk.backends.fake import FakeBackend
from lmdesk.core.errors import ModelLoadError, NoModelLoadedError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions
from lmdesk.engine import engine as engine_module
from lmdesk.engine.engine import Engine
from lmdesk.engine.jobs import JobCancelled, JobState
from lmdesk.engine.requests import LoadedModel, Reply, TokenCount

HELLO = [ChatMessage("user", "hello")]
WAIT = 30.0  # upper bound against hangs, not a timing assertion


@pytest.fixture
def engine():
    e = Engine()
    yield e
    assert e.shutdown(WAIT)
    assert not e.running


def test_load_then_iterate_then_result(engine):
    model = engine.load("fake", "fake").result(WAIT)
    assert isinstance(model, LoadedModel) and engine.model() == model
    job = engine.generate(HELLO)
    assert "".join(job) == "Hello, world!"
    reply = job.result(WAIT)
    assert isinstance(reply, Reply) and reply.text == "Hello, world!" and not reply.cancelled
    assert reply.stats.generated_tokens == 4 and job.state is JobState.FINISHED


def test_cancel_from_another_thread_ends_iteration_with_the_text_so_far(engine):
    engine.load("fake", "fake:slow").result(WAIT)
    job = engine.generate(HELLO)
    pieces = []
    for piece in job:
        pieces.append(piece)
        if len(pieces) == 2:
            threading.Thread(target=job.cancel).start()
    reply = job.result(WAIT)
    assert reply.cancelled and job.state is JobState.CANCELLED
    assert reply.text == "".join(pieces) and 2 <= reply.stats.generated_tokens < 40


def test_failure_is_raised_by_iteration_and_result(engine):
    job = engine.generate(HELLO)  # no model yet
    with pytest.raises(NoModelLoadedError):
        list(job)
    with pytest.raises(NoModelLoadedError):
        job.result(WAIT)
    assert job.state is JobState.FAILED and job.error.fix
    with pytest.raises(ModelLoadError, match="fake:broken"):
        engine.load("fake", "fake:broken").result(WAIT)


def test_cancelled_load_has_no_result_and_keeps_the_model(engine):
    engine.load("fake", "fake:slow").result(WAIT)
    busy = engine.generate(HELLO)
    load = engine.load("fake", "fake")
    load.cancel()
    busy.cancel()
    with pytest.raises(JobCancelled):
        load.result(WAIT)
    assert load.state is JobState.CANCELLED and engine.model().path == "fake:slow"


def test_count_tokens_is_served_during_a_generation(engine):
    engine.load("fake", "fake:slow").result(WAIT)
    job = engine.generate(HELLO)
    next(iter(job))  # the reply is streaming
    count = engine.count_tokens([ChatMessage("user", "x" * 40)]).result(WAIT)
    assert isinstance(count, TokenCount) and count.tokens == 16
    assert not job.done  # the count did not wait for the reply
    job.cancel()
    job.wait(WAIT)


def test_result_times_out_without_hanging(engine):
    engine.load("fake", "fake:slow").result(WAIT)
    job = engine.generate(HELLO)
    with pytest.raises(TimeoutError):
        job.result(timeout=0.01)
    job.cancel()
    assert job.wait(WAIT)


def test_listener_sees_every_event_in_order(engine):
    engine.load("fake", "fake").result(WAIT)
    events: list[str] = []
    job = engine.generate(HELLO, GenerationParams(), listener=lambda kind, _value: events.append(kind))
    job.wait(WAIT)
    assert events[0] == "started" and events[-1] == "finished" and set(events[1:-1]) == {"text"}


def test_slots_are_independent_threads(engine):
    engine.load("fake", "fake:slow").result(WAIT)
    engine.load("fake", "fake", slot="side").result(WAIT)
    slow = engine.generate(HELLO)
    next(iter(slow))
    assert engine.generate(HELLO, slot="side").result(WAIT).text == "Hello, world!"
    assert not slow.done
    assert engine.close_slot("side", WAIT) and engine.slots == ["main"]
    slow.cancel()
    assert slow.result(WAIT).cancelled


def test_a_second_local_model_must_fit_in_memory(tmp_path, monkeypatch):
    """Loading a local model next to another checks the memory estimate first, with a clear error."""
    weights = tmp_path / "big.gguf"
    weights.write_bytes(b"\0" * 4096)
    e = Engine(loader=lambda *a: FakeBackend())
    try:
        e.load("llama", str(weights)).result(WAIT)  # alone: no estimate needed
        monkeypatch.setattr(engine_module, "available_memory", lambda: 1000)
        with pytest.raises(ModelLoadError, match="big needs about .* free next to big") as info:
            e.load("llama", str(weights), slot="second").result(WAIT)
        assert "unload the other model" in info.value.user_text()
        monkeypatch.setattr(engine_module, "available_memory", lambda: 10**12)
        assert e.load("llama", str(weights), slot="second").result(WAIT).path == str(weights)
    finally:
        assert e.shutdown(WAIT)


def test_submit_after_shutdown_raises():
    e = Engine()
    assert e.shutdown(WAIT)
    with pytest.raises(RuntimeError):
        e.generate(HELLO)


def test_a_cancelled_count_ends_as_cancelled():
    gate = threading.Event()

    def slow_loader(*_args):
        assert gate.wait(WAIT)  # the slot is busy loading: the count waits behind it
        return FakeBackend()

    e = Engine(loader=slow_loader)
    try:
        load = e.load("fake", "x")
        count = e.count_tokens(HELLO)
        count.cancel()
        gate.set()
        assert load.result(WAIT).path == "x"
        with pytest.raises(JobCancelled):
            count.result(WAIT)
        assert count.state is JobState.CANCELLED and count.error is None
    finally:
        assert e.shutdown(WAIT)


def test_backends_receive_the_cache_folder(tmp_path):
    """The engine hands its cache folder to every load (the torch backend keeps converted weights there)."""
    seen = []

    def loader(_backend, _path, options, *_rest):
        seen.append(options.cache_dir)
        return FakeBackend()

    e = Engine(loader=loader, cache_dir=tmp_path)
    try:
        e.load("fake", "x").result(WAIT)
        e.load("fake", "y", LoadOptions(cache_dir="/elsewhere")).result(WAIT)  # an explicit one wins
    finally:
        assert e.shutdown(WAIT)
    assert seen == [str(tmp_path), "/elsewhere"]
