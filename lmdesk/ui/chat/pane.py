"""ChatPane: the sidebar of conversations, the transcript, the composer, and what links them.

The store is the source of truth: every action writes there first (one short transaction), then
reloads the conversation's tree (one indexed query) and shows its active path. While a reply
streams, only the view's tail changes; the rest of the transcript is left alone.
"""

from __future__ import annotations

import dataclasses
import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from lmdesk.core.chat.conversation import ConversationSettings, ConversationTree, Message, chat_messages
from lmdesk.core.messages import ChatMessage
from lmdesk.core.storage.store import Store, StoreError
from lmdesk.engine.bridge import EngineBridge
from lmdesk.core.text.chunk_budget import estimate_tokens
from lmdesk.ui.chat.composer import ComposerPanel, ContextMeter
from lmdesk.ui.chat.generation import ReplyRequest, ReplyStreamer
from lmdesk.ui.chat.message_view import MessageView
from lmdesk.ui.chat.settings_dialog import SettingsDialog
from lmdesk.ui.chat.sidebar import Sidebar
from lmdesk.ui.token_count import TokenCounter

log = logging.getLogger("lmdesk.ui")

LAST_CONVERSATION_KEY = "chat.last_conversation"
BUSY_NOTE = "A reply is being written: wait for it, or stop it (Esc)."


def estimate_usage(path: list[Message], system_prompt: str) -> int:
    """Tokens the conversation's prompt takes: the last reply's measured prompt + reply, plus estimates."""
    used, start = estimate_tokens(system_prompt), 0
    for i in range(len(path) - 1, -1, -1):
        stats = path[i].stats or {}
        if stats.get("prompt_tokens"):
            used, start = stats["prompt_tokens"] + stats.get("generated_tokens", 0), i + 1
            break
    return used + sum(estimate_tokens(m.content) + 4 for m in path[start:])


class ChatPane(QWidget):
    """Conversations with a local model: history, branches, streaming, settings."""

    sig_error = Signal(str)
    """A one-line error for the window's banner."""
    sig_info = Signal(str)
    """A one-line note for the window's banner (not an error)."""
    sig_reply_finished = Signal(object)
    """(GenerationStats) a reply ended, normally or stopped."""

    def __init__(self, bridge: EngineBridge, store: Store, parent=None) -> None:
        super().__init__(parent)
        self.bridge, self.store = bridge, store
        self.conversation_id: int | None = None
        self.tree: ConversationTree | None = None
        self.path: list[Message] = []
        self.settings = ConversationSettings()  # of the open conversation (or the next new one)
        self.settings_dialog: SettingsDialog | None = None

        self.sidebar = Sidebar(store)
        self.view = MessageView()
        self.panel = ComposerPanel()
        self.composer = self.panel.composer
        self.title = QLabel("New chat")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.meter = ContextMeter()
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.meter)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 0, 0, 0)
        rl.addLayout(header)
        rl.addWidget(self.view, 1)
        rl.addWidget(self.panel)
        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([230, 750])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

        self.counter = TokenCounter(bridge, self)
        self.counter.sig_counted.connect(self._on_counted)
        self.composer.textChanged.connect(self._count_later)
        self.streamer = ReplyStreamer(bridge, store, self)
        self.streamer.sig_text.connect(self._on_text)
        self.streamer.sig_done.connect(self._on_done)
        self.streamer.sig_failed.connect(self._on_failed)
        self.streamer.sig_error.connect(self.sig_error)
        self.panel.sig_send.connect(self.send)
        self.panel.sig_stop.connect(self.stop)
        self.panel.sig_settings.connect(self.open_settings)
        self.view.sig_action.connect(self.on_action)
        self.view.sig_copied.connect(self.sig_info)
        self.sidebar.sig_open.connect(self.open_conversation)
        self.sidebar.sig_new.connect(self.new_chat)
        self.sidebar.sig_deleted.connect(self._on_deleted)
        self.sidebar.sig_restored.connect(self.open_conversation)
        self.sidebar.sig_error.connect(self.sig_error)
        bridge.sig_model_changed.connect(lambda *_: self._update_meter())
        self.sidebar.refresh()
        self._update_meter()

    # -- state -------------------------------------------------------------------------------------

    @property
    def generating(self) -> bool:
        """A reply is being written (in any conversation)."""
        return self.streamer.busy

    def restore(self) -> None:
        """Reopen the conversation that was open last time, if it still exists."""
        cid = self.store.kv.get(LAST_CONVERSATION_KEY)
        if isinstance(cid, int) and cid in self.sidebar.ids():
            self.open_conversation(cid)

    def open_conversation(self, conversation_id: int) -> None:
        """Show a conversation (a reply streaming into it keeps streaming into the view)."""
        try:
            self.settings = self.store.get_settings(conversation_id)
            self.title.setText(self.store.get_conversation(conversation_id).title or "New chat")
        except (KeyError, StoreError) as exc:
            self.sig_error.emit(f"Could not open that conversation: {exc}")
            return
        if self.panel.editing_id is not None:
            self.panel.cancel_edit()
        self.conversation_id = conversation_id
        self.sidebar.select(conversation_id)
        self.view.follow = True
        if not self._reload(reset_window=True):
            self.new_chat()  # never leave another conversation's path under this id
            return
        self._remember(conversation_id)

    def new_chat(self) -> None:
        """An empty transcript; the conversation row is created by the first message."""
        if self.panel.editing_id is not None:
            self.panel.cancel_edit()
        self.conversation_id, self.tree, self.path = None, None, []
        self.settings = ConversationSettings()
        self.title.setText("New chat")
        self.sidebar.select(None)
        self.view.show_messages([], {}, reset_window=True)
        self._update_meter()
        self.composer.setFocus()

    def _remember(self, conversation_id: int) -> None:
        """The conversation to reopen at the next start (a failure here only costs that)."""
        try:
            self.store.kv.set(LAST_CONVERSATION_KEY, conversation_id)
        except StoreError as exc:
            log.warning("could not remember the open conversation: %s", exc)

    def _reload(self, reset_window: bool = False) -> bool:
        """Re-read the tree and show its active path (after any change to the conversation).

        Returns False (after telling the banner) if the store could not be read."""
        if self.conversation_id is None:
            return False
        try:
            self.tree = self.store.load_tree(self.conversation_id)
        except (StoreError, KeyError) as exc:
            self.sig_error.emit(f"Could not read that conversation: {exc}")
            return False
        self.path = self.tree.active_path()
        versions = {m.id: self.tree.version(m.id) for m in self.path}
        gen = self.streamer.current
        text = gen.writer.text if gen is not None and gen.conversation_id == self.conversation_id else None
        self.view.show_messages(self.path, versions, text, reset_window)
        self._update_meter()
        return True

    def _update_meter(self) -> None:
        """Show an estimate at once; the model's exact count follows when the engine has it."""
        total = self.bridge.model.context_length if self.bridge.model else 0
        used = estimate_usage(self.path, self.settings.system_prompt)
        self.meter.set_usage(used, total)
        self.panel.set_context_left(total - used if total else None)
        self._count_later()

    def _count_later(self) -> None:
        self.counter.request(self._prompts_to_count)

    def _prompts_to_count(self) -> list[list[ChatMessage]]:
        history = chat_messages(self.path, self.settings.system_prompt)
        return [history, history + [ChatMessage("user", self.panel.text())]]

    def _on_counted(self, counts: list) -> None:
        history, with_draft = counts
        self.meter.set_usage(history.tokens, history.context_length, exact=True)
        self.panel.set_exact_count(with_draft.tokens - history.tokens, history.context_length - with_draft.tokens)

    # -- sending -----------------------------------------------------------------------------------

    def send(self) -> None:
        """Send the composer's text (or resend an edited message) and stream the reply."""
        text = self.panel.text()
        if not text:
            return
        if self.generating:
            self.sig_info.emit(BUSY_NOTE)
            return
        if self.bridge.model is None and not self.bridge.loading():
            self.sig_error.emit("No model is loaded yet — pick one above.")
            return
        # While the model is still loading, the reply is queued behind the load and starts when
        # it is ready: a message typed right after launch is answered, not refused.
        try:
            if self.panel.editing_id is not None:
                user_id = self.store.edit_and_resend(self.panel.editing_id, text)
                self.panel.cancel_edit()  # the composer gets back the draft edit mode set aside
            else:
                if self.conversation_id is None:
                    self.conversation_id = self.store.create_conversation("", self.settings)
                    self._remember(self.conversation_id)
                leaf = self.path[-1].id if self.path else None
                user_id = self.store.add_message(self.conversation_id, leaf, "user", text)
                self.composer.clear()  # the text is saved: a failure from here on cannot lose it
        except (StoreError, KeyError, ValueError) as exc:
            self.sig_error.emit(f"Could not save the message: {exc}")
            return
        self._start_reply(user_id)
        self.sidebar.refresh(select_id=self.conversation_id)
        try:
            self.title.setText(self.store.get_conversation(self.conversation_id).title or "New chat")
        except (StoreError, KeyError) as exc:
            log.warning("could not read the conversation's title: %s", exc)

    def _start_reply(self, parent_id: int) -> None:
        model = self.bridge.model.name if self.bridge.model else None
        try:
            tree = self.store.load_tree(self.conversation_id)
            messages = chat_messages(tree.path_to(parent_id), self.settings.system_prompt)
            self.streamer.start(ReplyRequest(self.conversation_id, parent_id, messages, self.settings.to_params(), model))
        except (RuntimeError, StoreError, KeyError) as exc:
            self.sig_error.emit(f"Could not start the reply: {exc}")
        self.panel.set_generating(self.generating)
        self.view.follow = True
        self._reload()

    def stop(self) -> None:
        """Stop the reply being written; its text so far is kept (status `stopped`)."""
        self.streamer.stop()

    def escape(self) -> None:
        """Esc: stop a streaming reply, else leave edit mode."""
        if self.generating:
            self.stop()
        elif self.panel.editing_id is not None:
            self.panel.cancel_edit()

    def shutdown(self) -> None:
        """The window is closing: end a streaming reply as `stopped` without waiting for the engine."""
        self.streamer.abandon()

    # -- streamer signals --------------------------------------------------------------------------

    def _showing(self, message_id: int) -> bool:
        return self.view.stream_id == message_id

    def _on_text(self, message_id: int, text: str) -> None:
        if self._showing(message_id):
            self.view.append_text(text)

    def _on_done(self, message_id: int, stats) -> None:
        self._finished(message_id)
        self.sig_reply_finished.emit(stats)

    def _on_failed(self, message_id: int, message: str) -> None:
        self._finished(message_id)
        self.sig_error.emit(message)

    def _finished(self, message_id: int) -> None:
        self.panel.set_generating(False)
        if self.conversation_id is not None and self._showing(message_id):
            try:
                self.tree = self.store.load_tree(self.conversation_id)
            except (StoreError, KeyError) as exc:
                self.sig_error.emit(f"Could not read that conversation: {exc}")
            else:
                self.path = self.tree.active_path()
                m = self.tree.get(message_id)
                if m.status == "streaming":  # its final write failed and is being retried
                    m = dataclasses.replace(m, content=self.view.stream_text)
                self.view.finish_stream(m, self.tree.version(message_id))
                self._update_meter()
        self.sidebar.refresh()

    # -- message actions ---------------------------------------------------------------------------

    def on_action(self, verb: str, message_id: int) -> None:
        """Run an action link of the transcript (`action:<verb>:<id>`)."""
        if verb == "copy":
            self.copy_message(message_id)
            return
        if self.generating:
            self.sig_info.emit(BUSY_NOTE)
            return
        handler = {"regen": self.regenerate, "edit": self.edit, "fork": self.fork, "delete": self.delete_message,
                   "prev": lambda i: self.switch_version(i, -1), "next": lambda i: self.switch_version(i, +1)}.get(verb)
        if handler is None or self.tree is None or message_id not in self.tree:
            log.info("ignored action %s:%s", verb, message_id)
            return
        try:
            handler(message_id)
        except (StoreError, KeyError, ValueError) as exc:
            self.sig_error.emit(f"Could not {verb} that message: {exc}")

    def copy_message(self, message_id: int) -> None:
        """Put a message's text on the clipboard."""
        try:
            text = self.store.get_message(message_id).content
        except (StoreError, KeyError) as exc:
            self.sig_error.emit(f"Could not copy that message: {exc}")
            return
        QGuiApplication.clipboard().setText(text)
        self.sig_info.emit("Message copied")

    def copy_last_reply(self) -> None:
        """Copy the last assistant reply of the active path."""
        replies = [m for m in self.path if m.role == "assistant"]
        if replies:
            self.copy_message(replies[-1].id)

    def regenerate(self, message_id: int | None = None) -> None:
        """A new version of a reply (default: the last one; a trailing question gets its first reply)."""
        if self.generating or not self.path:
            return
        if self.bridge.model is None:
            self.sig_error.emit("No model is loaded yet.")
            return
        if message_id is None:
            message_id = self.path[-1].id
        m = self.tree.get(message_id)
        self._start_reply(m.id if m.role == "user" else m.parent_id)

    def edit(self, message_id: int) -> None:
        """Put a user message in the composer; sending it makes a new branch."""
        m = self.tree.get(message_id)
        if m.role == "user":
            self.panel.begin_edit(m.id, m.content)

    def switch_version(self, message_id: int, step: int) -> None:
        """Show the previous (-1) or next (+1) version of a message."""
        sibs = self.tree.siblings(message_id)
        i = [s.id for s in sibs].index(message_id) + step
        if 0 <= i < len(sibs):
            self.store.select_message(sibs[i].id)
            self._reload()

    def fork(self, message_id: int) -> None:
        """A new conversation with the path up to this message, opened."""
        cid = self.store.fork(message_id)
        self.sidebar.refresh(select_id=cid)
        self.open_conversation(cid)

    def delete_message(self, message_id: int) -> None:
        """Delete a message and everything that followed it on its branch."""
        n = self.store.delete_message(message_id)
        self._reload()
        self.sig_info.emit(f"Deleted {n} message{'s' if n != 1 else ''}")

    def _on_deleted(self, conversation_id: int) -> None:
        gen = self.streamer.current
        if gen is not None and gen.conversation_id == conversation_id:
            self.stop()
        if conversation_id == self.conversation_id:
            self.new_chat()

    # -- settings ----------------------------------------------------------------------------------

    def open_settings(self) -> SettingsDialog:
        """Open the settings of this conversation (non-blocking); OK saves them."""
        title = self.title.text()
        self.settings_dialog = SettingsDialog(self.store, self.settings, title, self)
        self.settings_dialog.sig_saved.connect(self.apply_settings)
        self.settings_dialog.sig_error.connect(self.sig_error)
        self.settings_dialog.open()
        return self.settings_dialog

    def apply_settings(self, settings: ConversationSettings) -> None:
        """Use (and save) new settings for this conversation."""
        self.settings = settings
        if self.conversation_id is not None:
            try:
                self.store.set_settings(self.conversation_id, settings)
            except StoreError as exc:
                self.sig_error.emit(exc.user_text())
        self._update_meter()

    def set_dark(self, dark: bool) -> None:
        """Follow the window's theme."""
        self.view.set_dark(dark)
        # `palette(mid)` in a style sheet is resolved when the sheet is set: set them again.
        for w in self.findChildren(QWidget):
            if w.styleSheet():
                w.setStyleSheet(w.styleSheet())
