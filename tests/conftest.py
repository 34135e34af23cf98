"""Shared fixtures: every test gets its own LMDESK_HOME; the real embedded model is at hand;
skipped tests fail the run unless they are marked `gpu` (CI must not pass on a skipped feature)."""

from __future__ import annotations

import os
import threading

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

_bad_skips: list[str] = []


@pytest.fixture(autouse=True)
def lmdesk_home(tmp_path, monkeypatch):
    """A private LMDESK_HOME per test: no test touches the user's real data or settings."""
    home = tmp_path / "lmdesk-home"
    monkeypatch.setenv("LMDESK_HOME", str(home))
    monkeypatch.delenv("LMDESK_DEFAULT_MODEL", raising=False)
    return home


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Every worker thread a test starts must be joined by the end of the test."""
    before = set(threading.enumerate())
    yield
    leaked = [
        t for t in threading.enumerate()
        if t not in before and t.is_alive() and t.name.startswith("lmdesk")
    ]
    for t in leaked:
        t.join(timeout=5)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"threads left running: {still}"


@pytest.fixture
def store(tmp_path):
    """A real SQLite store in a fresh file, closed after the test."""
    from lmdesk.core.storage.store import Store

    s = Store(tmp_path / "lmdesk.db")
    yield s
    s.close()


@pytest.fixture
def fake_model():
    """The scripted model that the `win` fixture loads: a test sets its pieces or failures."""
    from lmdesk.backends.fake import FakeBackend
    from lmdesk.core.params import LoadOptions

    return FakeBackend(context_length=LoadOptions().n_ctx)  # what the "fake" loader would give


@pytest.fixture
def win(qtbot, fake_model):
    """The main window on the scripted fake backend, closed after the test (chat GUI tests)."""
    from tests.chat_support import close_window, load, open_window

    w = open_window(qtbot, fake_model)
    load(qtbot, w, "fake", "fake")
    yield w
    close_window(w)


@pytest.fixture(scope="session")
def embedded_model_path() -> str:
    """Path of the real embedded GGUF model (installed by `make test`)."""
    from lmdesk.core.modelfiles.discovery import embedded_model_path as find

    return str(find())


def pytest_runtest_logreport(report):
    if report.skipped and "gpu" not in report.keywords:
        _bad_skips.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _bad_skips and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _bad_skips:
        terminalreporter.write_line(
            "FAILED: tests skipped that are not marked gpu (only GPU tests may skip): "
            + ", ".join(_bad_skips),
            red=True,
        )
