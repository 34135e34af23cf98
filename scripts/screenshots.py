"""Render the README screenshots from a real session with the embedded model (offscreen Qt).

Run: make screenshots   → docs/screenshots/*.png

The chat shots hold one earlier exchange written through the store (a question and an answer with
a code block and a table, shown without model or stats because no model wrote it: the embedded
135M model rarely produces both on demand), then real replies of the embedded model: one caught
mid-stream and finished in the light theme, a regenerated one caught mid-stream in the dark theme.
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

from lmdesk.core.chat.conversation import ConversationSettings  # noqa: E402
from lmdesk.ui.app import create_window  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"

EARLIER_QUESTION = "Write a Python function that tells whether a number is prime, and a table of the first primes."
EARLIER_ANSWER = """Here is a simple trial-division check:

```python
def is_prime(n: int) -> bool:
    if n < 2:
        return False
    for d in range(2, int(n ** 0.5) + 1):
        if n % d == 0:
            return False
    return True
```

| n | prime? | why |
|---:|:---:|---|
| 2 | yes | only even prime |
| 9 | no | 3 × 3 |
| 13 | yes | no divisor up to 3 |

It tests divisors only up to **√n**: a larger factor would pair with a smaller one.
"""
LIVE_QUESTION = "Show me a short Python function that reverses a string, in a code block, and explain it."


def spin(app: QApplication, done, timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while not done() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)
    if not done():
        raise TimeoutError("screenshot step timed out")


def settle(app: QApplication, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)


def chat_shots(app: QApplication, win) -> None:
    """chat-light.png, chat-streaming-light.png, chat-streaming-dark.png, chat-dark.png."""
    store, chat = win.store, win.chat
    cid = store.create_conversation("Prime numbers in Python")
    user = store.add_message(cid, None, "user", EARLIER_QUESTION)
    store.add_message(cid, user, "assistant", EARLIER_ANSWER)
    chat.sidebar.refresh()
    chat.open_conversation(cid)
    chat.apply_settings(ConversationSettings(max_tokens=160, temperature=0.3, seed=3))
    win.set_theme("light")
    chat.composer.setPlainText(LIVE_QUESTION)
    chat.send()
    spin(app, lambda: len(chat.view.stream_text) > 160)  # mid-stream, as the user sees it
    win.grab().save(str(OUT / "chat-streaming-light.png"))
    spin(app, lambda: not chat.generating)
    settle(app)
    chat.view.scroll_to_end()  # the finished reply with its stats
    settle(app)
    win.grab().save(str(OUT / "chat-light.png"))
    win.set_theme("dark")
    chat.regenerate()  # a second version, streaming in the dark theme
    spin(app, lambda: len(chat.view.stream_text) > 160)
    win.grab().save(str(OUT / "chat-streaming-dark.png"))
    spin(app, lambda: not chat.generating)
    settle(app)
    chat.view.scroll_to_end()  # the finished reply with its stats
    settle(app)
    win.grab().save(str(OUT / "chat-dark.png"))
    win.set_theme("light")


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    OUT.mkdir(parents=True, exist_ok=True)
    win = create_window()
    win.resize(1100, 860)
    win.show()
    spin(app, lambda: win.bridge.model is not None and win.model_bar.combo.count() > 0)
    chat_shots(app, win)
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
