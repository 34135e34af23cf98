"""Turning a stream of token bytes into text pieces that are safe to show.

Tokens can split a UTF-8 character (CJK, emoji) across two or more tokens, so bytes go through an
incremental decoder that holds back an incomplete character instead of showing U+FFFD. Stop
strings can also span tokens, so text that might be the start of a stop string is held back until
the next piece shows whether it is one.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class TextStream:
    """Feed token bytes (or text), get back text to show; `stopped` turns True at a stop string."""

    def __init__(self, stop: Sequence[str] = ()) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stop = tuple(s for s in stop if s)
        self._pending = ""  # decoded text held back because it may begin a stop string
        self.stopped = False

    def feed_bytes(self, data: bytes) -> str:
        """Add raw token bytes; return the text that can be shown now (may be "")."""
        return self.feed_text(self._decoder.decode(data))

    def feed_text(self, text: str) -> str:
        """Add already decoded text; return the text that can be shown now."""
        if self.stopped or not text:
            return ""
        if not self._stop:
            return text
        buf = self._pending + text
        cut = min((i for i in (buf.find(s) for s in self._stop) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._pending = ""
            return buf[:cut]
        hold = self._held_suffix(buf)
        self._pending = buf[len(buf) - hold:] if hold else ""
        return buf[: len(buf) - hold]

    def _held_suffix(self, buf: str) -> int:
        """Length of the longest end of `buf` that is a proper prefix of some stop string."""
        best = 0
        for s in self._stop:
            for n in range(min(len(s) - 1, len(buf)), best, -1):
                if buf.endswith(s[:n]):
                    best = n
                    break
        return best

    def flush(self) -> str:
        """End of stream: the held-back text. Bytes of a character cut off by the end (max tokens,
        Stop) are dropped: they are an artefact of stopping, and U+FFFD would show as garbage."""
        if self.stopped:
            return ""
        self._decoder.reset()
        tail = self._pending
        self._pending = ""
        if self._stop:
            for s in self._stop:
                i = tail.find(s)
                if i >= 0:
                    self.stopped = True
                    return tail[:i]
        return tail
