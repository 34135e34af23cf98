"""The transcript: one QTextBrowser document for the active path of a conversation.

Finished messages are rendered once (bodies cached per message) and set as one document. A reply
being written lives at the end of that document: each batch of text is appended as plain text at
once, and a throttled timer (≤ 10 Hz) re-renders only the reply's last markdown block (the blocks
before it can no longer change, so they are rendered once each). Nothing before the reply is
touched while it streams. Long conversations show their last messages first, with a link for more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QTextCursor, QTextDocument, QTextDocumentFragment
from PySide6.QtWidgets import QTextBrowser

from lmdesk.core.chat.conversation import Message
from lmdesk.core.render.markdown import render_markdown, split_last_block
from lmdesk.ui.chat.render import (
    BodyCache, MessageContext, copy_prefix, footer_html, header_html, message_html, more_html,
)
from lmdesk.ui.theme import view_colors

log = logging.getLogger("lmdesk.ui")

RENDER_INTERVAL_MS = 100  # markdown re-render of the streaming tail: at most 10 per second
FIRST_WINDOW = 120  # messages shown when a conversation opens; "Show earlier" adds EXTRA_WINDOW
EXTRA_WINDOW = 200


class MessageView(QTextBrowser):
    """Renders messages with action links; streams a reply into its end cheaply."""

    sig_action = Signal(str, int)
    """(verb, message id) an action link was clicked: copy, regen, edit, prev, next, fork, delete."""
    sig_copied = Signal(str)
    """A short note after text was put on the clipboard."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)  # links never navigate inside the view
        self.setOpenExternalLinks(False)
        self.setPlaceholderText("Ask anything. Replies stream here.")
        self.document().setDocumentMargin(12)
        self.anchorClicked.connect(self._on_anchor)
        self.open_url: Callable[[QUrl], object] = QDesktopServices.openUrl  # tests replace it
        self.dark = False
        self.cache = BodyCache()
        self._path: list[Message] = []
        self._versions: dict[int, tuple[int, int]] = {}
        self._window = FIRST_WINDOW
        self._codes: dict[int, list[str]] = {}
        # streaming state
        self.stream_id: int | None = None
        self.stream_text = ""
        self._stream_pos = 0  # where the streaming message starts in the document
        self._tail_pos = 0  # where its unstable last block starts
        self._stable_len = 0  # characters of stream_text rendered as stable blocks
        self._stable_codes: list[str] = []
        self._tail_codes: list[str] = []
        self._dirty = False
        self._render_timer = QTimer(self, singleShot=True, interval=RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render_tail)
        self.renders = 0  # tail re-renders so far (tests and the benchmark read it)
        self.follow = True  # auto-scroll with the reply until the user scrolls up
        sb = self.verticalScrollBar()
        sb.valueChanged.connect(self._on_scrolled)
        sb.rangeChanged.connect(self._on_range)

    # -- whole document --------------------------------------------------------------------------

    def show_messages(self, path: list[Message], versions: dict[int, tuple[int, int]],
                      stream_text: str | None = None, reset_window: bool = False) -> None:
        """Show a path; if its last message is streaming, `stream_text` is what arrived so far.

        When the new path shares a beginning with the one shown (send, regenerate, edit, switch a
        late version), only the messages after the shared part are replaced: sending into a long
        conversation costs the new messages, not the whole transcript.
        """
        streaming = path[-1] if path and path[-1].status == "streaming" and stream_text is not None else None
        shown = path[:-1] if streaming else path
        old = [m.id for m in self._path] if self.stream_id is None else []
        common = 0
        for a, b in zip(old, (m.id for m in shown)):
            if a != b:
                break
            common += 1
        first_shown = max(0, len(self._path) - self._window)
        if (reset_window or not old or common <= first_shown or common < len(old) - 20
                or (common < len(old) and not self._truncate_at(old[common]))):
            self._render_all(path, versions, shown, streaming, stream_text, reset_window)
            return
        self._render_timer.stop()
        self._path, self._versions = path, versions
        self._window = max(self._window, len(shown) - first_shown)  # the hidden ones stay hidden
        self._append(shown[common:])
        if streaming is not None:
            self._begin(streaming, stream_text or "")

    def _render_all(self, path, versions, shown, streaming, stream_text, reset_window) -> None:
        self._path, self._versions = path, versions
        if reset_window:
            self._window = FIRST_WINDOW
        self._render_timer.stop()
        hidden = max(0, len(shown) - self._window)
        colors = view_colors(self.dark)
        parts = [more_html(hidden, colors)] if hidden else []
        self._codes.clear()
        for m in shown[hidden:]:
            parts.append(self._message_html(m))
        follow = self.follow
        value = self.verticalScrollBar().value()
        self.stream_id = None
        self.setHtml("".join(parts))
        if streaming is not None:
            self._begin(streaming, stream_text or "")
        # setHtml resets the scroll position: keep the reader where they were, or at the end.
        sb = self.verticalScrollBar()
        sb.setValue(sb.maximum() if follow else value)
        self.follow = follow

    def _message_html(self, m: Message) -> str:
        html, codes = message_html(m, MessageContext(self._versions.get(m.id, (1, 1))), self.dark,
                                   view_colors(self.dark), self.cache)
        if codes:
            self._codes[m.id] = codes
        return html

    def _append(self, messages: list[Message]) -> None:
        if not messages:
            return
        c = self._end_cursor()
        if not self.document().isEmpty():
            c.insertBlock()
        self._insert_html(c, "".join(self._message_html(m) for m in messages))

    def _truncate_at(self, message_id: int) -> bool:
        """Remove a message and everything after it (found from the end: it is usually near).

        Returns False, changing nothing, if the message is not in the document."""
        name = f"m{message_id}"
        block = self.document().lastBlock()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                if name in it.fragment().charFormat().anchorNames():
                    c = QTextCursor(self.document())
                    c.setPosition(max(0, block.position() - 1))
                    c.movePosition(QTextCursor.End, QTextCursor.KeepAnchor)
                    c.removeSelectedText()
                    self._codes.pop(message_id, None)
                    return True
                it += 1
            block = block.previous()
        log.warning("message %s not found in the transcript; rendering it all", message_id)
        return False

    def set_dark(self, dark: bool) -> None:
        """Switch palettes and re-render (bodies are cached per theme)."""
        if dark == self.dark:
            return
        self.dark = dark
        self.rerender()

    def rerender(self) -> None:
        """Render the current path again, whole (after a theme change or "show earlier")."""
        path = self._path
        streaming = path[-1] if self.stream_id is not None and path and path[-1].id == self.stream_id else None
        self._render_all(path, self._versions, path[:-1] if streaming else path, streaming,
                         self.stream_text if streaming else None, False)

    def scroll_to_end(self) -> None:
        """Jump to the last message and follow new text again."""
        self.follow = True
        sb = self.verticalScrollBar()
        sb.setValue(sb.maximum())

    # -- streaming -------------------------------------------------------------------------------

    def _end_cursor(self) -> QTextCursor:
        c = QTextCursor(self.document())
        c.movePosition(QTextCursor.End)
        return c

    def _insert_html(self, c: QTextCursor, html: str) -> None:
        """Insert HTML at an empty block as setHtml would lay it out.

        insertHtml merges the fragment's first block into the cursor's block, which keeps its old
        format (margins); so parse once into a scratch document and give that block its format.
        """
        start = c.position()
        scratch = QTextDocument()
        scratch.setDefaultFont(self.document().defaultFont())
        scratch.setHtml(html)
        c.insertFragment(QTextDocumentFragment(scratch))
        fix = QTextCursor(self.document())
        fix.setPosition(start)
        fix.setBlockFormat(scratch.begin().blockFormat())

    def _begin(self, m: Message, text: str) -> None:
        c = self._end_cursor()
        if not self.document().isEmpty():
            c.insertBlock()
        self._stream_pos = c.position()
        colors = view_colors(self.dark)
        self._insert_html(c, header_html(m, colors).replace(
            "</p>", f'&nbsp;<font color="{colors.muted}" size="-1">· writing… (Esc to stop)</font></p>', 1))
        c = self._end_cursor()
        c.insertBlock()
        self._tail_pos = c.position()
        self.stream_id, self.stream_text = m.id, text
        self._stable_len, self._stable_codes, self._tail_codes = 0, [], []
        if text:
            self._render_tail()

    def append_text(self, text: str) -> None:
        """Add a batch of streamed text: plain now, markdown at the next throttled render."""
        if self.stream_id is None or not text:
            return
        self.stream_text += text
        self._end_cursor().insertText(text)
        self._dirty = True
        if not self._render_timer.isActive():
            self._render_timer.start(RENDER_INTERVAL_MS)

    def _render_tail(self, split: bool = True) -> None:
        """Render new stable blocks once, then the last block; with `split`, the last block waits
        for the next turn of the event loop when stable blocks were rendered (two short stalls
        rather than one long one)."""
        if self.stream_id is None:
            return
        self._dirty = False
        self.renders += 1
        prefix, last = split_last_block(self.stream_text)
        c = QTextCursor(self.document())
        c.setPosition(self._tail_pos)
        c.movePosition(QTextCursor.End, QTextCursor.KeepAnchor)
        c.removeSelectedText()
        if len(prefix) > self._stable_len:
            r = render_markdown(prefix[self._stable_len:], self.dark, len(self._stable_codes),
                                copy_prefix(self.stream_id))
            self._insert_html(c, r.html)
            self._stable_codes += r.code_blocks
            self._stable_len = len(prefix)
            c = self._end_cursor()
            c.insertBlock()
            self._tail_pos = c.position()
            if split and last.strip():
                c.insertText(last)  # plain for a moment, so nothing flickers
                self._dirty = True
                self._render_timer.start(0)
                return
        if last.strip():
            r = render_markdown(last, self.dark, len(self._stable_codes), copy_prefix(self.stream_id))
            self._insert_html(c, r.html)
            self._tail_codes = r.code_blocks

    def finish_stream(self, m: Message, version: tuple[int, int] = (1, 1)) -> None:
        """End the streaming reply in place: last block rendered, header without "writing…", footer.

        Only the tail is rendered again: a full render of a long reply (tens of code blocks) takes
        longer than a frame. A later full render (reopening, theme switch) renders it whole.
        """
        if self.stream_id != m.id:
            return
        self._render_timer.stop()
        if m.content != self.stream_text:  # the store has the truth (e.g. text the view never got)
            self.stream_text = m.content
        self._render_tail(split=False)
        self.stream_id = None
        if self._path and self._path[-1].id == m.id:
            self._path[-1] = m
        self._versions[m.id] = version
        colors = view_colors(self.dark)
        c = QTextCursor(self.document())
        c.setPosition(self._stream_pos)
        c.movePosition(QTextCursor.EndOfBlock, QTextCursor.KeepAnchor)
        c.removeSelectedText()
        self._insert_html(c, header_html(m, colors))
        c = self._end_cursor()
        c.insertBlock()
        self._insert_html(c, footer_html(m, MessageContext(version), colors))
        self._codes[m.id] = self._stable_codes + self._tail_codes

    # -- links and scrolling ---------------------------------------------------------------------

    def _on_anchor(self, url: QUrl) -> None:
        href = url.toString()
        scheme, _, rest = href.partition(":")
        if scheme == "action":
            verb, _, ident = rest.partition(":")
            if verb == "more":
                self._window += EXTRA_WINDOW
                self.follow = False
                self.rerender()
                self.verticalScrollBar().setValue(0)
                return
            self.sig_action.emit(verb, int(ident))
        elif scheme == "copy":
            mid, _, n = rest.partition(":")
            codes = (self._stable_codes + self._tail_codes) if int(mid) == self.stream_id else self._codes.get(int(mid), [])
            if int(n) < len(codes):
                QGuiApplication.clipboard().setText(codes[int(n)])
                self.sig_copied.emit("Code copied")
        elif scheme.lower() in ("http", "https", "mailto"):
            self.open_url(url)  # only on a click, in the system browser
        else:
            log.info("ignored link %s", href)

    def loadResource(self, kind: int, name: QUrl) -> object:  # noqa: N802 (Qt name)
        """Never load anything (markdown emits no images; this is the belt to those braces)."""
        return None

    def _on_scrolled(self, value: int) -> None:
        self.follow = value >= self.verticalScrollBar().maximum() - 8

    def _on_range(self, _lo: int, hi: int) -> None:
        if self.follow:
            self.verticalScrollBar().setValue(hi)

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        # Escape belongs to the window (Stop); QTextBrowser would swallow it otherwise.
        if event.key() == Qt.Key_Escape:
            event.ignore()
            return
        super().keyPressEvent(event)
