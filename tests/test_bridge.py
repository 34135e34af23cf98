"""EngineBridge through pytest-qt, with the fake backend: per-job signals, threads, cancel, shutdown."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QCoreApplication, QThread

from lmdesk.core.errors import ModelLoadError, NoModelLoadedError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams
from lmdesk.engine.bridge import EngineBridge, QtJob
from lmdesk.engine.requests import GenerateRequest, LoadedModel

HELLO = [ChatMessage("user", "hello")]
WAIT_MS = 10_000


@pytest.fixture
def bridge(qtbot):
    b = EngineBridge()
    yield b
    assert b.shutdown()
    assert not b.engine.running


def load(qtbot, bridge: EngineBridge, path: str = "fake", slot: str = "main") -> LoadedModel:
    job = bridge.load_model("fake", path, slot=slot)
    with qtbot.waitSignal(job.sig_finished, timeout=WAIT_MS) as blocker:
        pass
    assert isinstance(blocker.args[0], LoadedModel)
    return blocker.args[0]


def ended(qtbot, job: QtJob) -> None:
    qtbot.waitUntil(lambda: job.ended, timeout=WAIT_MS)


def test_load_emits_progress_then_model_on_gui_thread(qtbot, bridge):
    gui_thread = QThread.currentThread()
    seen: list[tuple[str, bool]] = []
    fractions: list[float] = []
    changed: list[tuple[str, LoadedModel]] = []
    bridge.sig_model_changed.connect(lambda slot, m: changed.append((slot, m)))
    job = bridge.load_model("fake", "fake")
    job.sig_progress.connect(lambda f: (fractions.append(f), seen.append(("progress", QThread.currentThread() is gui_thread))))
    job.sig_finished.connect(lambda m: seen.append(("loaded", QThread.currentThread() is gui_thread)))
    with qtbot.assertNotEmitted(job.sig_failed), qtbot.waitSignal(job.sig_finished, timeout=WAIT_MS) as blocker:
        pass
    model = blocker.args[0]
    assert bridge.model == model and model.path == "fake" and changed == [("main", model)]
    assert fractions and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert seen[-1] == ("loaded", True) and all(on_gui for _, on_gui in seen)
    assert not bridge.busy


def test_generate_streams_text_then_finishes_on_gui_thread(qtbot, bridge):
    load(qtbot, bridge)
    gui_thread = QCoreApplication.instance().thread()
    batches: list[str] = []
    threads_ok: list[bool] = []

    def on_text(text: str) -> None:
        batches.append(text)
        threads_ok.append(QThread.currentThread() is gui_thread)

    job = bridge.generate(HELLO, GenerationParams(temperature=0))
    assert bridge.busy  # returned at once, before the worker ran anything
    # Connected after submitting: a job's events wait for the GUI thread, so none is missed.
    job.sig_text.connect(on_text)
    with qtbot.assertNotEmitted(job.sig_failed), qtbot.waitSignals(
        [job.sig_started, job.sig_finished], order="strict", timeout=WAIT_MS
    ):
        pass
    assert "".join(batches) == "Hello, world!" == job.text
    assert threads_ok and all(threads_ok)
    assert not bridge.busy and job.ended
    assert job.id > 0


def test_a_view_sees_only_its_own_job(qtbot, bridge):
    load(qtbot, bridge)
    first = bridge.generate([ChatMessage("user", "one")])
    second = bridge.generate([ChatMessage("user", "two")])
    seen: dict[str, list[str]] = {"first": [], "second": []}
    first.sig_text.connect(seen["first"].append)
    second.sig_text.connect(seen["second"].append)
    ended(qtbot, second)
    assert "".join(seen["first"]) == "Hello, world!" == "".join(seen["second"])
    assert first.ended


def test_finished_carries_reason_and_stats(qtbot, bridge):
    load(qtbot, bridge)
    job = bridge.generate(HELLO, GenerationParams(max_tokens=2))
    with qtbot.waitSignal(job.sig_finished, timeout=WAIT_MS,
                          check_params_cb=lambda stats: stats.stop_reason == "length" and stats.generated_tokens == 2):
        pass


def test_cancel_through_the_job(qtbot, bridge):
    load(qtbot, bridge, "fake:slow")
    job = bridge.generate(HELLO)
    with qtbot.waitSignal(job.sig_text, timeout=WAIT_MS):
        pass
    with qtbot.waitSignal(job.sig_cancelled, timeout=WAIT_MS) as blocker, qtbot.assertNotEmitted(job.sig_finished):
        job.cancel()
    assert blocker.args[0].stop_reason == "cancelled" and blocker.args[0].generated_tokens >= 1
    assert job.text.startswith("word0 ")
    assert not bridge.busy


def test_cancel_all_through_the_bridge(qtbot, bridge):
    load(qtbot, bridge, "fake:slow")
    jobs = [bridge.generate(HELLO) for _ in range(3)]
    cancelled: list[int] = []
    for job in jobs:
        job.sig_cancelled.connect(lambda _s, j=job: cancelled.append(j.id))
    bridge.cancel_all()
    qtbot.waitUntil(lambda: len(cancelled) == 3, timeout=WAIT_MS)
    assert sorted(cancelled) == [j.id for j in jobs]


def test_failed_load_reports_one_line_and_keeps_model(qtbot, bridge):
    good = load(qtbot, bridge)
    bad = bridge.load_model("fake", "fake:broken")
    with qtbot.waitSignal(bad.sig_failed, timeout=WAIT_MS) as blocker:
        pass
    assert "fake:broken" in blocker.args[0] and "\n" not in blocker.args[0]
    assert isinstance(bad.error, ModelLoadError)
    assert bridge.model == good
    job = bridge.generate(HELLO)
    with qtbot.waitSignal(job.sig_finished, timeout=WAIT_MS, check_params_cb=lambda s: s.stop_reason == "stop"):
        pass


def test_cancelled_load_ends_as_cancelled_not_failed(qtbot, bridge):
    good = load(qtbot, bridge, "fake:slow")
    busy = bridge.generate(HELLO)  # holds the queue so the load is still waiting when cancelled
    job = bridge.load_model("fake", "fake")
    with qtbot.waitSignal(job.sig_cancelled, timeout=WAIT_MS), qtbot.assertNotEmitted(job.sig_failed):
        job.cancel()
        busy.cancel()
    assert bridge.model == good


def test_generate_without_model_fails_with_fix(qtbot, bridge):
    job = bridge.submit(GenerateRequest(HELLO))
    with qtbot.waitSignal(job.sig_failed, timeout=WAIT_MS) as blocker:
        pass
    error = job.error
    assert isinstance(error, NoModelLoadedError)
    assert blocker.args[0] == error.user_text() and error.fix in blocker.args[0]
    assert bridge.model is None and not bridge.busy


def test_count_tokens_uses_the_loaded_model(qtbot, bridge):
    load(qtbot, bridge)
    job = bridge.count_tokens([ChatMessage("user", "x" * 40)])
    with qtbot.waitSignal(job.sig_finished, timeout=WAIT_MS) as blocker:
        pass
    count = blocker.args[0]
    assert count.tokens == 40 // 4 + 4 + 2 and count.context_length == bridge.model.context_length  # the fake's rule


def test_two_slots_serve_at_the_same_time(qtbot, bridge):
    """A second slot has its own thread and queue: its reply is not held behind the main slot's."""
    load(qtbot, bridge, "fake:slow")
    load(qtbot, bridge, "fake", slot="side")
    assert bridge.model.path == "fake:slow" and bridge.model_in("side").path == "fake"
    slow = bridge.generate(HELLO)
    with qtbot.waitSignal(slow.sig_text, timeout=WAIT_MS):
        pass
    fast = bridge.generate(HELLO, slot="side")
    ended(qtbot, fast)
    assert fast.text == "Hello, world!" and not slow.ended  # served while the main slot is busy
    slow.cancel()
    ended(qtbot, slow)
    assert sorted(bridge.engine.slots) == ["main", "side"]


def test_shutdown_with_work_in_flight_joins_the_workers(qtbot):
    bridge = EngineBridge()
    load(qtbot, bridge, "fake:slow")
    load(qtbot, bridge, "fake:slow", slot="side")
    bridge.generate(HELLO)
    bridge.generate(HELLO, slot="side")
    assert bridge.shutdown()
    assert not bridge.engine.running
    assert bridge.shutdown()  # idempotent
    with pytest.raises(RuntimeError):
        bridge.generate(HELLO)


def test_about_to_quit_shuts_the_worker_down(qtbot):
    bridge = EngineBridge()
    QCoreApplication.instance().aboutToQuit.emit()  # what QApplication.quit() does on the way out
    assert not bridge.engine.running
