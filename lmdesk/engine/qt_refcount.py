"""Work-around for a reference-count bug in PySide6 6.12 that kills the process on CPython 3.11.

`SignalInstance.emit()` and `SignalInstance.disconnect()` return `True` without taking a reference
to it, so every call (and pytest-qt's waitSignal disconnects too) steals one reference from the
`True` singleton. On CPython >= 3.12 `True` is immortal and nothing happens; on 3.11 its count
(~600 at start-up) reaches zero after a few hundred signals and the interpreter aborts with
"Fatal Python error: bool_dealloc". Measured here: 100 emits -> refcount(True) - 100.

The fix gives `True` and `False` a reference count so large that no run can exhaust it (2**40
emits at 60 per second take 580 years), which is what immortality does on 3.12. No Qt import here.
"""

from __future__ import annotations

import ctypes
import sys

_PIN = 1 << 40
_done = False


def pin_bool_refcounts() -> bool:
    """Make True/False effectively immortal on CPython < 3.12; True when it changed anything."""
    global _done
    if _done or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    for obj in (True, False):
        # ob_refcnt is the first field of every object in a release build of CPython 3.11.
        ctypes.c_ssize_t.from_address(id(obj)).value += _PIN
    _done = True
    return True
