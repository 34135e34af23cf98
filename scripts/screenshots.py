"""Render the README screenshots from a real session with the embedded model (offscreen Qt).

Run: make screenshots   → docs/screenshots/*.png
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LMDESK_HOME", tempfile.mkdtemp(prefix="lmdesk-shots-"))

from PySide6.QtWidgets import QApplication  # noqa: E402

from lmdesk.core.params import GenerationParams  # noqa: E402
from lmdesk.ui.app import create_window  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def spin(app: QApplication, done, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not done() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)
    if not done():
        raise TimeoutError("screenshot step timed out")


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    OUT.mkdir(parents=True, exist_ok=True)
    win = create_window()
    win.resize(1000, 700)
    win.show()
    spin(app, lambda: win.bridge.model is not None and win.model_bar.combo.count() > 0)
    chat = win.chat
    chat.params = GenerationParams(max_tokens=120, temperature=0.0, seed=1)
    chat.composer.setPlainText("Give me three tips for writing clear emails.")
    chat.send()
    spin(app, lambda: len(chat._reply) > 80)  # noqa: SLF001 - mid-stream, as the user sees it
    win.grab().save(str(OUT / "chat-streaming.png"))
    spin(app, lambda: not chat.generating)
    chat.composer.setPlainText("Now say it in one sentence.")
    win.grab().save(str(OUT / "chat.png"))
    # An error, shown as a banner while the loaded model keeps working.
    bad = Path(os.environ["LMDESK_HOME"]) / "not a model.gguf"
    bad.write_bytes(os.urandom(4096))
    win.load_model("llama", str(bad))
    spin(app, lambda: win.banner.isVisible())
    win.grab().save(str(OUT / "error-banner.png"))
    win.close()
    win.bridge.shutdown()
    for p in sorted(OUT.glob("*.png")):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
