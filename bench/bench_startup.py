"""Start-up benchmark: process start → main window on screen (its first paint), lmdesk ÷ a bare window.

Launches, alternately, `lmdesk` (the real command: `lmdesk.cli.main([])`, embedded model, a
temporary LMDESK_HOME of its own) and a bare PySide6 `QWidget`, several times each. Every child
creates its QApplication, installs the same event filter, and prints a timestamp
(`time.monotonic()`, one clock for all processes) just after the first paint of its top-level window
has been handled, then exits. The parent takes `time.monotonic()` just before starting the child;
the difference is the time a user waits for the window. Reports medians and their ratio.

Goals: lmdesk ÷ bare ≤ 1.5 and lmdesk < 0.5 s.

Runs under Xvfb when it is installed and no display is set (a real X server, like a desktop);
otherwise on Qt's offscreen platform (it paints too, but skips the window system's round trips).

Run:  .venv/bin/python bench/bench_startup.py [--runs 7]        → bench/results/startup.json
Not a test: machines are noisy; compare figures from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "startup.json"
GOAL_RATIO, GOAL_SECONDS = 1.5, 0.5
MARK = "FIRST-PAINT "

# The child's first lines: the same for both kinds of window, so both pay for the same imports of Qt
# and for the same event filter.
_CHILD_PRELUDE = f"""
import os, sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication

class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Paint and obj.isWidgetType() and obj.isWindow():
            QTimer.singleShot(0, self.report)  # after this paint has been drawn and flushed
            QApplication.instance().removeEventFilter(self)
        return False

    def report(self):
        print("{MARK}%.6f" % time.monotonic(), flush=True)
        os._exit(0)

app = QApplication(sys.argv[:1])
first_paint = FirstPaint()
app.installEventFilter(first_paint)
"""

CHILDREN = {
    "bare": _CHILD_PRELUDE + """
from PySide6.QtWidgets import QWidget
w = QWidget()
w.setWindowTitle("bare")
w.resize(1100, 760)
w.show()
sys.exit(app.exec())
""",
    # The real `lmdesk` command with no arguments: the GUI on the default (embedded) model.
    "lmdesk": _CHILD_PRELUDE + """
from lmdesk.cli import main
sys.exit(main([]))
""",
}


def start_display() -> tuple[dict[str, str], subprocess.Popen | None, str]:
    """Environment for the children: an Xvfb display if possible, else the offscreen platform."""
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    if os.environ.get("DISPLAY"):
        return env, None, f"X display {os.environ['DISPLAY']}"
    xvfb = shutil.which("Xvfb")
    if xvfb:
        for n in range(99, 140):
            if Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
                continue
            proc = subprocess.Popen([xvfb, f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                if Path(f"/tmp/.X11-unix/X{n}").exists():
                    env["DISPLAY"] = f":{n}"
                    env["QT_QPA_PLATFORM"] = "xcb"
                    return env, proc, f"Xvfb :{n}"
                time.sleep(0.05)
            proc.kill()
            proc.wait()
            break
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env, None, "offscreen (Xvfb not available)"


def launch(kind: str, env: dict[str, str]) -> float:
    """Seconds from starting the child process to its first painted window."""
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", CHILDREN[kind]], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    for line in out.stdout.splitlines():
        if line.startswith(MARK):
            return float(line[len(MARK):]) - t0
    raise RuntimeError(f"{kind} window never painted (exit {out.returncode}):\n{out.stderr[-3000:]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="launches of each kind (after one warm-up each)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    env, xvfb, display = start_display()
    home = tempfile.mkdtemp(prefix="lmdesk-startup-")
    env.update(LMDESK_HOME=home, PYTHONPATH=str(ROOT))
    env.pop("LMDESK_DEFAULT_MODEL", None)
    # The warm-up launch writes the .pyc files, as a user's first launch does; with this set
    # (some CI images do) every launch would compile the changed sources again.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    times: dict[str, list[float]] = {"bare": [], "lmdesk": []}
    try:
        try:
            launch("bare", env)  # warm-up: disk cache, .pyc files
        except RuntimeError as exc:
            if xvfb is None:
                raise
            # Qt's X11 plugin needs libraries a minimal system may lack (README: Quick start).
            print(f"Qt cannot open a window on {display}; using the offscreen platform\n{exc}", file=sys.stderr)
            env.update(QT_QPA_PLATFORM="offscreen")
            env.pop("DISPLAY", None)
            display = "offscreen (Qt's X11 plugin failed to load)"
            launch("bare", env)
        launch("lmdesk", env)  # warm-up, and lmdesk's first-run database
        for _ in range(args.runs):
            for kind in times:  # alternate, so drifting machine load hits both alike
                times[kind].append(launch(kind, env))
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait()
        shutil.rmtree(home, ignore_errors=True)

    bare, app = statistics.median(times["bare"]), statistics.median(times["lmdesk"])
    ratio = app / bare
    result = {
        "what": "process start -> first paint of the main window, lmdesk (embedded model) vs a bare PySide6 QWidget",
        "display": display,
        "runs": args.runs,
        "bare_s": [round(t, 4) for t in times["bare"]],
        "lmdesk_s": [round(t, 4) for t in times["lmdesk"]],
        "median_bare_s": round(bare, 4),
        "median_lmdesk_s": round(app, 4),
        "ratio": round(ratio, 3),
        "goal_ratio": GOAL_RATIO,
        "goal_seconds": GOAL_SECONDS,
        "met": ratio <= GOAL_RATIO and app < GOAL_SECONDS,
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    print(f"display: {display}; {args.runs} launches each, alternating")
    print(f"bare PySide6 window: median {bare:.3f} s  ({', '.join(f'{t:.3f}' for t in times['bare'])})")
    print(f"lmdesk main window:  median {app:.3f} s  ({', '.join(f'{t:.3f}' for t in times['lmdesk'])})")
    print(f"lmdesk ÷ bare = {ratio:.2f}  (goal ≤ {GOAL_RATIO}, and lmdesk < {GOAL_SECONDS} s: "
          f"{'met' if result['met'] else 'missed'})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
