"""The engine on the real embedded GGUF model: through the worker directly, then through the bridge."""

from __future__ import annotations

import threading

import pytest

from lmdesk.core.errors import ModelLoadError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams
from lmdesk.engine.requests import GenerateRequest, LoadRequest, Reply
from lmdesk.engine.worker import InferenceWorker
from tests import model_files as mf
from tests.test_worker import Recorder, finished_stats

STORY = [ChatMessage("user", "Write a very long story about a dragon who lives in a mountain.")]
GREEDY = GenerationParams(temperature=0.0, max_tokens=48, seed=0)
WAIT_MS = 180_000  # upper bounds against hangs on a busy 2-core machine, not timing assertions
WAIT = WAIT_MS / 1000


@pytest.fixture
def events() -> Recorder:
    return Recorder(timeout=WAIT)


@pytest.fixture
def worker(events, embedded_model_path):
    w = InferenceWorker(events)
    w.start()
    req_id = w.submit(LoadRequest("llama", embedded_model_path))
    events.wait(req_id)
    assert events.of(req_id, "loaded"), events.log
    yield w
    assert w.shutdown(timeout=WAIT)
    assert not w.is_alive()


def test_streams_batches_that_add_up_to_the_reply(worker, events):
    model = worker.current_model
    assert model.backend == "llama" and model.name == "SmolLM2-135M-Instruct.Q4_1" and model.context_length > 0
    req_id = worker.submit(GenerateRequest(STORY, GREEDY))
    events.wait(req_id)
    stats = finished_stats(events, req_id)
    batches = [e[2] for e in events.of(req_id, "text")]
    text = "".join(batches)
    assert stats.stop_reason in ("stop", "length") and stats.generated_tokens > 0
    assert text.strip() and "\ufffd" not in text
    assert 1 <= len(batches) <= stats.generated_tokens  # never more batches than tokens
    # No equality with a second run: llama.cpp promises the same floats only for the same cache
    # state and batching, and a repeated prompt re-evaluates its last token alone (on some CPUs
    # the greedy text then differs at a near-tie). What must hold: the batches are the reply.
    from lmdesk.engine.engine import Engine

    with Engine() as engine:
        assert engine.load("llama", worker.current_model.path).result(WAIT)
        job = engine.generate(STORY, GREEDY)
        streamed = "".join(job)
        reply = job.result(WAIT)
    assert isinstance(reply, Reply) and reply.text == streamed and reply.stats.generated_tokens > 0


def test_non_ascii_reply_is_never_mangled(worker, events):
    prompt = [ChatMessage("user", "Write five emoji and the word 東京 (Tokyo) in Japanese and Chinese.")]
    req_id = worker.submit(GenerateRequest(prompt, GenerationParams(temperature=0.0, max_tokens=64)))
    events.wait(req_id)
    assert finished_stats(events, req_id).generated_tokens > 0
    assert "\ufffd" not in events.text(req_id)  # incremental UTF-8 decoding across split tokens


def test_cancel_mid_generation(worker, events):
    got_text = threading.Event()
    original = events.on_text

    def on_text(req_id, text):
        original(req_id, text)
        got_text.set()

    events.on_text = on_text
    req_id = worker.submit(GenerateRequest(STORY, GenerationParams(temperature=0.0, max_tokens=4000)))
    assert got_text.wait(WAIT)
    worker.cancel(req_id)
    events.wait(req_id)
    stats = finished_stats(events, req_id)
    assert stats.stop_reason == "cancelled" and 0 < stats.generated_tokens < 4000
    # The model is still usable after a cancel.
    after = worker.submit(GenerateRequest(STORY, GenerationParams(temperature=0.0, max_tokens=8)))
    events.wait(after)
    assert finished_stats(events, after).generated_tokens > 0


def test_cancel_during_a_long_prompt(worker, events):
    long_paste = [ChatMessage("user", "Summarise this: " + "The quick brown fox jumps over the lazy dog. " * 150)]
    started = threading.Event()
    original = events.on_started

    def on_started(req_id):
        original(req_id)
        started.set()

    events.on_started = on_started
    req_id = worker.submit(GenerateRequest(long_paste, GenerationParams(max_tokens=8)))
    assert started.wait(WAIT)
    worker.cancel(req_id)
    events.wait(req_id)
    assert finished_stats(events, req_id).stop_reason == "cancelled"


def test_bad_model_load_keeps_the_real_model(worker, events, tmp_path):
    before = worker.current_model
    for bad in (mf.make_unsupported_arch_gguf(tmp_path), mf.make_truncated_gguf(tmp_path)):
        req_id = worker.submit(LoadRequest("llama", str(bad)))
        events.wait(req_id)
        ((_, _, error),) = events.of(req_id, "failed")
        assert isinstance(error, ModelLoadError) and bad.name in error.user_text()
    assert worker.current_model == before
    req_id = worker.submit(GenerateRequest(STORY, GenerationParams(temperature=0.0, max_tokens=8)))
    events.wait(req_id)
    assert finished_stats(events, req_id).generated_tokens > 0


def test_shutdown_during_generation(events, embedded_model_path):
    w = InferenceWorker(events)
    w.start()
    events.wait(w.submit(LoadRequest("llama", embedded_model_path)))
    got_text = threading.Event()
    original = events.on_text
    events.on_text = lambda rid, text: (original(rid, text), got_text.set())
    running = w.submit(GenerateRequest(STORY, GenerationParams(max_tokens=4000)))
    queued = w.submit(GenerateRequest(STORY))
    assert got_text.wait(WAIT)
    assert w.shutdown(timeout=WAIT)
    assert not w.is_alive() and w.current_model is None  # the model was freed on the worker thread
    assert finished_stats(events, running).stop_reason == "cancelled"
    assert finished_stats(events, queued).stop_reason == "cancelled"


# ---- through the bridge (pytest-qt) ------------------------------------------------------------------


@pytest.fixture
def bridge(qtbot, embedded_model_path):
    from lmdesk.engine.bridge import EngineBridge

    b = EngineBridge()
    progress: list[float] = []
    job = b.load_model("llama", embedded_model_path)
    job.sig_progress.connect(progress.append)
    with qtbot.waitSignal(job.sig_finished, timeout=WAIT_MS), qtbot.assertNotEmitted(job.sig_failed):
        pass
    assert progress and progress[-1] == 1.0
    yield b
    assert b.shutdown()


def test_bridge_streams_the_real_model(qtbot, bridge):
    from PySide6.QtCore import QCoreApplication, QThread

    assert bridge.model.backend == "llama"
    gui = QCoreApplication.instance().thread()
    batches: list[str] = []
    on_gui: list[bool] = []
    job = bridge.generate(STORY, GREEDY)
    job.sig_text.connect(lambda t: (batches.append(t), on_gui.append(QThread.currentThread() is gui)))
    with qtbot.assertNotEmitted(job.sig_failed), qtbot.waitSignal(
        job.sig_finished, timeout=WAIT_MS, check_params_cb=lambda s: s.generated_tokens > 0
    ) as blocker:
        pass
    assert blocker.args[0].stop_reason in ("stop", "length")
    assert "".join(batches).strip() and all(on_gui) and "".join(batches) == job.text


def test_bridge_counts_tokens_with_the_model_tokenizer(qtbot, bridge):
    """An exact count from the loaded model, served even while a reply is being generated."""
    long = bridge.generate(STORY, GenerationParams(max_tokens=4000))
    with qtbot.waitSignal(long.sig_text, timeout=WAIT_MS):
        pass
    short, longer = [ChatMessage("user", "Hi")], [ChatMessage("user", "Hi there, how are you today?")]
    counts = [bridge.count_tokens(m) for m in (short, longer)]
    with qtbot.waitSignal(counts[1].sig_finished, timeout=WAIT_MS):
        pass
    assert not long.ended  # answered between two batches of the running reply
    a, b = (c.job.result(0) for c in counts)
    assert 0 < a.tokens < b.tokens and a.context_length == bridge.model.context_length
    with qtbot.waitSignal(long.sig_cancelled, timeout=WAIT_MS):
        long.cancel()


def test_bridge_cancel_and_shutdown_on_the_real_model(qtbot, bridge):
    job = bridge.generate(STORY, GenerationParams(max_tokens=4000))
    with qtbot.waitSignal(job.sig_text, timeout=WAIT_MS):
        pass
    with qtbot.waitSignal(job.sig_cancelled, timeout=WAIT_MS) as blocker, qtbot.assertNotEmitted(job.sig_finished):
        job.cancel()
    assert blocker.args[0].stop_reason == "cancelled"
    job = bridge.generate(STORY, GenerationParams(max_tokens=4000))
    with qtbot.waitSignal(job.sig_text, timeout=WAIT_MS):
        pass
    assert bridge.shutdown()  # while generating: cancels, joins, frees the model
    assert not bridge.engine.running
