"""EngineBridge through pytest-qt, with the fake backend: signals, threads, cancel, shutdown."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QCoreApplication, QThread

from lmdesk.core.errors import ModelLoadError, NoModelLoadedError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams
from lmdesk.engine.bridge import EngineBridge
from lmdesk.engine.worker import GenerateRequest, LoadedModel

HELLO = [ChatMessage("user", "hello")]
WAIT_MS = 10_000


@pytest.fixture
def bridge(qtbot):
    b = EngineBridge()
    yield b
    assert b.shutdown()
    assert not b.worker.is_alive()


def load(qtbot, bridge: EngineBridge, path: str = "fake") -> LoadedModel:
    with qtbot.waitSignal(bridge.sig_model_loaded, timeout=WAIT_MS) as blocker:
        req_id = bridge.load_model("fake", path)
    assert blocker.args[0] == req_id
    return blocker.args[1]


def test_load_emits_progress_then_model_on_gui_thread(qtbot, bridge):
    gui_thread = QThread.currentThread()
    seen: list[tuple[str, bool]] = []
    bridge.sig_load_progress.connect(lambda _i, f: seen.append(("progress", QThread.currentThread() is gui_thread)))
    bridge.sig_model_loaded.connect(lambda _i, m: seen.append(("loaded", QThread.currentThread() is gui_thread)))
    fractions: list[float] = []
    bridge.sig_load_progress.connect(lambda _i, f: fractions.append(f))

    with qtbot.assertNotEmitted(bridge.sig_failed):
        model = load(qtbot, bridge)
    assert bridge.model == model and model.path == "fake"
    assert fractions and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert seen[-1] == ("loaded", True) and all(on_gui for _, on_gui in seen)
    assert not bridge.busy


def test_generate_streams_chunks_then_finishes_on_gui_thread(qtbot, bridge):
    load(qtbot, bridge)
    gui_thread = QCoreApplication.instance().thread()
    chunks: list[str] = []
    threads_ok: list[bool] = []

    def on_chunk(req_id: int, text: str) -> None:
        chunks.append(text)
        threads_ok.append(QThread.currentThread() is gui_thread)

    bridge.sig_chunk.connect(on_chunk)
    with qtbot.assertNotEmitted(bridge.sig_failed), qtbot.waitSignals(
        [bridge.sig_started, bridge.sig_finished], order="strict", timeout=WAIT_MS
    ):
        req_id = bridge.generate(HELLO, GenerationParams(temperature=0))
        assert bridge.busy  # returned at once, before the worker ran anything
    assert "".join(chunks) == "Hello, world!"
    assert threads_ok and all(threads_ok)
    assert not bridge.busy
    assert req_id > 0


def test_finished_carries_reason_and_stats(qtbot, bridge):
    load(qtbot, bridge)
    with qtbot.waitSignal(
        bridge.sig_finished,
        timeout=WAIT_MS,
        check_params_cb=lambda rid, reason, stats: reason == "length" and stats.generated_tokens == 2,
    ):
        bridge.generate(HELLO, GenerationParams(max_tokens=2))


def test_cancel_through_the_bridge(qtbot, bridge):
    load(qtbot, bridge, "fake:slow")
    with qtbot.waitSignal(bridge.sig_chunk, timeout=WAIT_MS):
        req_id = bridge.generate(HELLO)
    with qtbot.waitSignal(
        bridge.sig_finished, timeout=WAIT_MS, check_params_cb=lambda rid, reason, _s: rid == req_id
    ) as blocker:
        bridge.cancel(req_id)
    assert blocker.args[1] == "cancelled" and blocker.args[2].stop_reason == "cancelled"
    assert not bridge.busy


def test_cancel_all_through_the_bridge(qtbot, bridge):
    load(qtbot, bridge, "fake:slow")
    ids = [bridge.generate(HELLO) for _ in range(3)]
    ended: dict[int, str] = {}
    bridge.sig_finished.connect(lambda rid, reason, _s: ended.__setitem__(rid, reason))
    bridge.cancel_all()
    qtbot.waitUntil(lambda: len(ended) == 3, timeout=WAIT_MS)
    assert ended == {i: "cancelled" for i in ids}


def test_failed_load_reports_one_line_and_keeps_model(qtbot, bridge):
    good = load(qtbot, bridge)
    with qtbot.waitSignal(bridge.sig_failed, timeout=WAIT_MS) as blocker:
        bad_id = bridge.load_model("fake", "fake:broken")
    assert blocker.args[0] == bad_id
    assert "fake:broken" in blocker.args[1] and "\n" not in blocker.args[1]
    assert isinstance(bridge.last_error(bad_id), ModelLoadError)
    assert bridge.model == good
    with qtbot.waitSignal(bridge.sig_finished, timeout=WAIT_MS, check_params_cb=lambda *a: a[1] == "stop"):
        bridge.generate(HELLO)


def test_generate_without_model_fails_with_fix(qtbot, bridge):
    with qtbot.waitSignal(bridge.sig_failed, timeout=WAIT_MS) as blocker:
        req_id = bridge.submit(GenerateRequest(HELLO))
    error = bridge.last_error(req_id)
    assert isinstance(error, NoModelLoadedError)
    assert blocker.args[1] == error.user_text() and error.fix in blocker.args[1]
    assert bridge.model is None and not bridge.busy


def test_shutdown_with_work_in_flight_joins_the_worker(qtbot):
    bridge = EngineBridge()
    load(qtbot, bridge, "fake:slow")
    bridge.generate(HELLO)
    bridge.generate(HELLO)
    assert bridge.shutdown()
    assert not bridge.worker.is_alive()
    assert bridge.shutdown()  # idempotent
    with pytest.raises(RuntimeError):
        bridge.generate(HELLO)


def test_about_to_quit_shuts_the_worker_down(qtbot):
    bridge = EngineBridge()
    QCoreApplication.instance().aboutToQuit.emit()  # what QApplication.quit() does on the way out
    assert not bridge.worker.is_alive()
