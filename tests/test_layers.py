"""Layer rules of DESIGN.md, checked rather than hoped for."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "lmdesk"


def _module_name(path: Path) -> str:
    parts = ["lmdesk", *path.relative_to(PKG).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str | None = None) -> set[str]:
    """Every module name the file imports, anywhere in it; relative imports made absolute (the
    file is module `module`, by default its place under lmdesk/), and `from a import b` counted
    as both `a` and `a.b` (b may be a submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = (module or _module_name(path)).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    return names


def _offenders(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """For each module under lmdesk/<folder>, the imports that name (or sit inside) a forbidden module."""
    files = sorted((PKG / folder).rglob("*.py"))
    assert len(files) >= 5, f"layer check found too few modules in {folder}/: wrong path?"
    found = {
        str(f.relative_to(PKG)): sorted(n for n in _imports(f) if any(n == b or n.startswith(b + ".") for b in forbidden))
        for f in files
    }
    return {k: v for k, v in found.items() if v}


def test_core_and_backends_never_import_qt():
    assert _offenders("core", ("PySide6", "shiboken6")) == {}
    assert _offenders("backends", ("PySide6", "shiboken6")) == {}


def test_core_is_the_bottom_layer():
    """core/ is used by everything and uses nothing of lmdesk's: not the engine, the UI, the
    backends, the CLI, nor lmdesk.config (callers pass in the folders and settings it needs)."""
    assert _offenders("core", ("lmdesk.engine", "lmdesk.ui", "lmdesk.backends", "lmdesk.cli",
                               "lmdesk.config")) == {}


def test_backends_know_neither_engine_nor_ui():
    assert _offenders("backends", ("lmdesk.engine", "lmdesk.ui")) == {}


def test_ui_reaches_backends_only_through_the_engine():
    assert _offenders("ui", ("lmdesk.backends",)) == {}


def test_the_import_reader_sees_what_the_layer_checks_rely_on(tmp_path):
    """_imports finds imports inside functions, relative ones, and submodules named by `from`."""
    code = ("from ...backends import llamacpp\nfrom . import pane\n"
            "def f():\n    import PySide6.QtCore\n    from lmdesk import engine\n")
    probe = tmp_path / "probe.py"
    probe.write_text(code, encoding="utf-8")
    names = _imports(probe, "lmdesk.ui.chat.probe")
    assert {"lmdesk.backends.llamacpp", "lmdesk.ui.chat.pane", "PySide6.QtCore", "lmdesk.engine"} <= names


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


# PySide6 releases that drop a reference to True on every emit/disconnect (see pyproject).
_LEAKY_PYSIDE6 = {"6.12.0"}


def test_qt_binding_does_not_leak_references_to_true():
    """PySide6 6.12.0 drops a reference to True on every emit/disconnect on CPython 3.11 and the
    process aborts after a few hundred signals; pyproject pins a release without that bug.

    On CPython >= 3.12 True is immortal (PEP 683): its reference count is a fixed sentinel that
    no decref moves, so counting cannot see the leak there (nor can the leak crash). The version
    check holds everywhere; the count is asserted wherever it can move.
    """
    import PySide6
    from PySide6.QtCore import QObject, Signal

    assert PySide6.__version__ not in _LEAKY_PYSIDE6, f"PySide6 {PySide6.__version__} leaks references to True"

    class Emitter(QObject):
        sig = Signal(int)

    e = Emitter()
    slot = lambda _v: None  # noqa: E731
    before = sys.getrefcount(True)
    for _ in range(2000):
        e.sig.connect(slot)
        e.sig.emit(1)
        e.sig.disconnect(slot)
    after = sys.getrefcount(True)
    if sys.version_info < (3, 12):
        assert after > before - 100, f"{before - after} references to True lost in 2000 signals"


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
