"""Layer rules of DESIGN.md, checked rather than hoped for."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "lmdesk"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_and_backends_never_import_qt():
    files = sorted((PKG / "core").rglob("*.py")) + sorted((PKG / "backends").rglob("*.py"))
    assert len(files) >= 8, "layer check found too few modules: wrong path?"
    offenders = {
        str(f.relative_to(PKG)): sorted(n for n in _imports(f) if n.split(".")[0] in {"PySide6", "shiboken6"})
        for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_engine_worker_is_qt_free():
    assert not {n for n in _imports(PKG / "engine" / "worker.py") if n.startswith("PySide6")}


def test_gui_start_imports_neither_torch_nor_transformers(tmp_path):
    """Building the main window (as `lmdesk` does) must not pay for torch's imports."""
    code = (
        "import json, sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from lmdesk.ui.app import create_window\n"
        "w = create_window()\n"
        "w.show(); app.processEvents()\n"
        "w.bridge.shutdown()\n"
        "print(json.dumps({m: m in sys.modules for m in ('torch', 'transformers', 'PySide6')}))\n"
    )
    env = {**__import__("os").environ, "LMDESK_HOME": str(tmp_path), "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == {"torch": False, "transformers": False, "PySide6": True}


def test_cli_commands_do_not_import_qt(tmp_path):
    code = "import sys\nfrom lmdesk import cli\nprint('PySide6' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_qt_binding_does_not_leak_references_to_true():
    """PySide6 6.12.0 drops a reference to True on every emit/disconnect on CPython 3.11 and the
    process aborts after a few hundred signals; pyproject pins a release without that bug."""
    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        sig = Signal(int)

    e = Emitter()
    slot = lambda _v: None  # noqa: E731
    before = sys.getrefcount(True)
    for _ in range(2000):
        e.sig.connect(slot)
        e.sig.emit(1)
        e.sig.disconnect(slot)
    assert sys.getrefcount(True) > before - 100


def test_only_one_app_instance_holds_the_history(tmp_path):
    """A second lmdesk on the same data folder is refused while the first holds the lock, and a
    lock left by a killed process does not block the next start."""
    from lmdesk.config import app_paths
    from lmdesk.ui.app import single_instance_lock

    paths = app_paths().ensure()
    first = single_instance_lock(paths)
    assert first is not None
    holder = subprocess.run(
        [sys.executable, "-c", "from lmdesk.config import app_paths; from lmdesk.ui.app import single_instance_lock;"
         "print(single_instance_lock(app_paths().ensure()) is None)"],
        capture_output=True, text=True, timeout=60)
    assert holder.stdout.strip() == "True", holder.stderr
    first.unlock()
    # A process that takes the lock and dies by SIGKILL leaves a stale lock file behind.
    killed = subprocess.run(
        [sys.executable, "-c", "import os, signal; from lmdesk.config import app_paths;"
         "from lmdesk.ui.app import single_instance_lock; l = single_instance_lock(app_paths().ensure());"
         "assert l is not None; os.kill(os.getpid(), signal.SIGKILL)"],
        capture_output=True, text=True, timeout=60)
    assert killed.returncode == -9 and (paths.data / "lmdesk.lock").exists()
    assert single_instance_lock(paths) is not None
