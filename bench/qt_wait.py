"""Wait for a condition the way the GUI does: in a real Qt event loop, which sleeps until an event
arrives. (Polling processEvents() in a loop keeps a core busy and slows the model's threads, which
would make lmdesk look slower than it is.)"""

from __future__ import annotations

from PySide6.QtCore import QEventLoop, QTimer


def wait_for(done, timeout: float = 300.0) -> None:
    """Run the event loop until done() is true; TimeoutError after `timeout` seconds."""
    if done():
        return
    loop = QEventLoop()
    poll = QTimer(interval=5)  # a cheap check; the engine's signals arrive as queued events
    poll.timeout.connect(lambda: done() and loop.quit())
    QTimer.singleShot(int(timeout * 1000), loop.quit)
    poll.start()
    loop.exec()
    poll.stop()
    if not done():
        raise TimeoutError("benchmark step timed out")
