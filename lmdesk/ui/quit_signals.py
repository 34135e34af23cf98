"""SIGTERM, SIGHUP and SIGINT (Ctrl+C in the launching terminal) quit the GUI the way Quit does.

A session manager's logout, `kill`, or Ctrl+C must not leave a reply `streaming`, unsaved settings
or a held lock file behind. Python runs signal handlers only when the interpreter gets control, and
Qt's event loop is C++: so the C-level handler writes the signal number to a socket
(`signal.set_wakeup_fd`) that a QSocketNotifier watches, which wakes the event loop and lets the
Python handler run on the GUI thread. The handler then schedules the quit for the event loop, so the
window closes from a clean point, never from the middle of whatever Python code was interrupted.
Where the wakeup socket cannot be set up, a periodic no-op timer hands control to Python instead.

Exit code: a quit by signal ends with the shell's convention for a signal, 128 + its number
(143 SIGTERM, 129 SIGHUP, 130 SIGINT), after the same clean shutdown as Quit.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Callable

from PySide6.QtCore import QSocketNotifier, QTimer

log = logging.getLogger("lmdesk.ui")

# SIGHUP does not exist on Windows.
QUIT_SIGNALS: tuple[int, ...] = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT")
                                      if hasattr(signal, name))

FALLBACK_POLL_MS = 200  # how often Python gets control when there is no wakeup socket


class QuitOnSignals:
    """While installed, each of QUIT_SIGNALS calls `quit(signum)` once, from the Qt event loop.

    Must be installed and uninstalled on the main thread (Python delivers signals only there).
    `received` holds the first signal's number, or None."""

    def __init__(self, quit: Callable[[int], None]) -> None:
        self._quit = quit
        self.received: int | None = None
        self._previous: dict[int, object] = {}
        self._old_wakeup_fd: int | None = None
        self._sockets: tuple[socket.socket, socket.socket] | None = None
        self._notifier: QSocketNotifier | None = None
        self._poll: QTimer | None = None

    def install(self) -> None:
        try:
            reader, writer = socket.socketpair()
        except OSError as exc:
            log.warning("no wakeup socket for signals (%s): polling instead", exc)
        else:
            reader.setblocking(False)
            writer.setblocking(False)
            try:
                self._old_wakeup_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
            except (OSError, ValueError) as exc:
                log.warning("no wakeup socket for signals (%s): polling instead", exc)
                reader.close()
                writer.close()
            else:
                self._sockets = (reader, writer)
                self._notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read)
                self._notifier.activated.connect(self._drain)
        if self._sockets is None:
            self._poll = QTimer(interval=FALLBACK_POLL_MS)
            self._poll.timeout.connect(lambda: None)  # entering Python runs pending signal handlers
            self._poll.start()
        for signum in QUIT_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        """Put back the handlers and wakeup fd that were there before `install` (idempotent)."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
        if self._poll is not None:
            self._poll.stop()
            self._poll = None
        if self._sockets is not None:
            signal.set_wakeup_fd(self._old_wakeup_fd if self._old_wakeup_fd is not None else -1)
            self._notifier.setEnabled(False)
            self._notifier = None
            for s in self._sockets:
                s.close()
            self._sockets = None

    def _drain(self) -> None:
        """The wakeup socket has bytes: read them so it does not fire again. The Python handler
        itself runs as soon as the interpreter has control, i.e. by now."""
        try:
            while self._sockets is not None and self._sockets[0].recv(512):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            log.warning("could not read the signal wakeup socket: %s", exc)

    def _handle(self, signum: int, _frame) -> None:
        # Runs between two Python bytecodes on the main thread: only schedule the quit here.
        if self.received is not None:
            return  # already quitting
        self.received = signum
        QTimer.singleShot(0, lambda: self._fire(signum))

    def _fire(self, signum: int) -> None:
        log.info("%s received: quitting", signal.Signals(signum).name)
        self._quit(signum)
