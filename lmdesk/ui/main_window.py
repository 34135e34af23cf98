"""The main window: model bar, error banner, Chat / Write / Translate tabs, menus, and a status bar
with model, backend, device and the last reply's speed. Remembers its geometry in the store."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QRect, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel, QMainWindow, QTabWidget, QVBoxLayout, QWidget

from lmdesk.config import Paths, Settings
from lmdesk.core.errors import LmdeskError
from lmdesk.core.modelfiles.discovery import ModelInfo, discover_models, embedded_model_path
from lmdesk.core.stats import GenerationStats
from lmdesk.core.storage.store import Store, StoreError
from lmdesk.engine.bridge import EngineBridge, QtJob
from lmdesk.ui import shortcuts
from lmdesk.ui.banner import Banner
from lmdesk.ui.chat import ChatPane
from lmdesk.ui.chat.files import FORMATS, ConversationFiles, default_file_name
from lmdesk.ui.chat.render import stats_line
from lmdesk.ui.model_bar import ModelBar
from lmdesk.ui.theme import THEMES, apply_theme

if TYPE_CHECKING:  # built on first use: their imports and widgets are not on the first paint's path
    from lmdesk.ui.translate_pane import TranslatePane
    from lmdesk.ui.write_pane import WritePane

log = logging.getLogger("lmdesk.ui")

GEOMETRY_KEY, SPLITTER_KEY, TAB_KEY = "window.geometry", "window.chat_splitter", "window.tab"


class MainWindow(QMainWindow):
    """Top-level window; owns no model itself — everything goes through the EngineBridge."""

    def __init__(self, bridge: EngineBridge, paths: Paths, settings: Settings, store: Store) -> None:
        super().__init__()
        self.bridge = bridge
        self.paths = paths
        self.settings = settings
        self.store = store
        self._loads: list[QtJob] = []  # model loads not yet ended, in submission order
        self._fallback: str | None = None  # model to load if the start-up one fails
        self.models: list[ModelInfo] = []
        self.shortcuts_dialog: shortcuts.ShortcutsDialog | None = None
        self._after_paint: list[Callable[[], None]] | None = []  # None once the window has painted
        self.setWindowTitle("lmdesk")
        self.resize(1100, 760)

        self.banner = Banner()
        self.model_bar = ModelBar(settings)
        self.chat = ChatPane(bridge, store)
        self.files = ConversationFiles(bridge, store, self)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.chat, "Chat")
        # Write and Translate start as empty pages and are built when first shown or used (or
        # just after the first paint), so the window appears without waiting for them.
        self._panes: dict[str, QWidget] = {}
        self._placeholders = {"Write": QWidget(), "Translate": QWidget()}
        for label, page in self._placeholders.items():
            self.tabs.addTab(page, label)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(10, 8, 10, 6)
        layout.addWidget(self.model_bar)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.model_label = QLabel("No model")
        self.speed_label = QLabel("")
        self.statusBar().addWidget(self.model_label, 1)
        self.statusBar().addPermanentWidget(self.speed_label)
        self._build_menus()

        self.model_bar.sig_load_requested.connect(self.load_model)
        self.model_bar.sig_options_changed.connect(self.load_model)
        self.model_bar.sig_cancel_requested.connect(self.cancel_loads)
        self.chat.sig_error.connect(self.banner.show_message)
        self.chat.sig_info.connect(lambda text: self.statusBar().showMessage(text, 4000))
        self.chat.sig_reply_finished.connect(self._on_reply_finished)
        self.files.sig_error.connect(self.banner.show_message)
        self.files.sig_exported.connect(lambda path: self.statusBar().showMessage(f"Exported to {path}", 6000))
        self.files.sig_imported.connect(self._on_imported)
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._on_os_scheme)
        self.set_theme(settings.theme if settings.theme in THEMES else "system")
        self._restore_state()
        if settings.load_problem:  # a broken settings.json: say what was reset and where it went
            self.banner.show_message(settings.load_problem)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self._on_tab_changed(self.tabs.currentIndex())
        # The last conversation is rendered (markdown, code highlighting) once the window is up.
        self.after_first_paint(self._restore_conversation)
        self.after_first_paint(lambda: QTimer.singleShot(0, self._build_remaining_panes))

    # -- the Write and Translate panes, built on first use -----------------------------------------

    @property
    def write(self) -> WritePane:
        """The Write pane (built now if it has not been yet)."""
        return self._pane("Write")  # type: ignore[return-value]

    @property
    def translate(self) -> TranslatePane:
        """The Translate pane (built now if it has not been yet)."""
        return self._pane("Translate")  # type: ignore[return-value]

    def _pane(self, label: str) -> QWidget:
        pane = self._panes.get(label)
        if pane is None:
            if label == "Write":
                from lmdesk.ui.write_pane import WritePane

                pane = WritePane(self.bridge, self.store)
            else:
                from lmdesk.ui.translate_pane import TranslatePane

                pane = TranslatePane(self.bridge, self.store)
            pane.sig_error.connect(self.banner.show_message)
            self._panes[label] = pane
            placeholder = self._placeholders.pop(label)
            index, current = self.tabs.indexOf(placeholder), self.tabs.currentIndex()
            self.tabs.blockSignals(True)  # swapping the page is not a change of tab
            self.tabs.insertTab(index, pane, label)
            self.tabs.removeTab(index + 1)
            self.tabs.setCurrentIndex(current)
            self.tabs.blockSignals(False)
            placeholder.deleteLater()
        return pane

    def _build_remaining_panes(self) -> None:
        if not self.isVisible():  # closed before the event loop came back here: its store is closed
            return
        for label in list(self._placeholders):
            self._pane(label)

    def _on_tab_changed(self, index: int) -> None:
        label = self.tabs.tabText(index)
        if label in self._placeholders:
            self._pane(label)
        self.focus_current_pane()

    # -- menus -------------------------------------------------------------------------------------

    def _action(self, menu, text: str, slot, shortcut: str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(shortcuts.key(shortcut))
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self.new_chat_action = self._action(file, "New chat", self.new_chat, "new_chat")
        file.addSeparator()
        self.import_action = self._action(file, "Import conversation…", self.import_conversation)
        self.export_md_action = self._action(file, "Export conversation as Markdown…", lambda: self.export_conversation("markdown"))
        self.export_json_action = self._action(file, "Export conversation as JSON…", lambda: self.export_conversation("json"))
        file.addSeparator()
        self._action(file, "Quit", self.close, "quit")
        chat = bar.addMenu("&Chat")
        self.search_action = self._action(chat, "Search chats", self.focus_search, "search")
        self.stop_action = self._action(chat, "Stop", self.chat.escape, "stop")
        # Esc only where the focus is in the chat: the Write and Translate panes bind their own
        # Esc, and two window-wide bindings of one key would cancel each other out.
        self.stop_action.setShortcutContext(Qt.WidgetWithChildrenShortcut)
        self.chat.addAction(self.stop_action)
        self.regen_action = self._action(chat, "Regenerate last reply", lambda: self.chat.regenerate(), "regenerate")
        self.copy_last_action = self._action(chat, "Copy last reply", self.chat.copy_last_reply, "copy_last")
        chat.addSeparator()
        self.settings_action = self._action(chat, "Chat settings…", self.chat.open_settings, "settings")
        view = bar.addMenu("&View")
        theme_menu = view.addMenu("Theme")
        self.theme_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for name in THEMES:
            a = QAction({"system": "Follow the system", "light": "Light", "dark": "Dark"}[name], self, checkable=True)
            a.triggered.connect(lambda _c=False, n=name: self.set_theme(n))
            group.addAction(a)
            theme_menu.addAction(a)
            self.theme_actions[name] = a
        help_menu = bar.addMenu("&Help")
        self.shortcuts_action = self._action(help_menu, "Keyboard shortcuts", self.show_shortcuts, "shortcuts")

    def new_chat(self) -> None:
        """Ctrl+N: a new chat in the Chat tab, ready to type in."""
        self.tabs.setCurrentWidget(self.chat)
        self.chat.new_chat()
        self.chat.composer.setFocus(Qt.OtherFocusReason)

    def focus_current_pane(self) -> None:
        """Give the keyboard to the open tab's text box: the chat composer, Write's editor, or
        Translate's source text (at launch, and whenever the tab changes)."""
        current = self.tabs.currentWidget()
        if current is self.chat:
            target = self.chat.composer
        elif current is self._panes.get("Write"):
            target = self.write.editor
        elif current is self._panes.get("Translate"):
            target = self.translate.source
        else:
            target = None
        if target is not None:
            target.setFocus(Qt.OtherFocusReason)

    def focus_search(self) -> None:
        """Ctrl+F: the chat search box."""
        self.tabs.setCurrentWidget(self.chat)
        self.chat.sidebar.search.setFocus()
        self.chat.sidebar.search.selectAll()

    def show_shortcuts(self) -> None:
        """Help → Shortcuts, non-modal."""
        if self.shortcuts_dialog is None:
            self.shortcuts_dialog = shortcuts.ShortcutsDialog(self)
        self.shortcuts_dialog.show()
        self.shortcuts_dialog.raise_()

    def set_theme(self, theme: str) -> None:
        """Apply "system", "light" or "dark" to the app and the transcript; remembered in settings."""
        self.settings.theme = theme
        self.theme_actions[theme].setChecked(True)
        app = QApplication.instance()
        dark = apply_theme(app, theme) if app is not None else False
        self.chat.set_dark(dark)

    def _on_os_scheme(self, *_args) -> None:
        if self.settings.theme == "system":
            self.set_theme("system")

    # -- export / import ---------------------------------------------------------------------------

    def export_conversation(self, fmt: str, path: str | None = None) -> None:
        """Write the open conversation to a file (asks where unless `path` is given)."""
        cid = self.chat.conversation_id
        if cid is None:
            self.banner.show_message("Open a conversation to export it.", "info")
            return
        if path is None:
            name = default_file_name(self.chat.title.text(), fmt)
            path, _ = QFileDialog.getSaveFileName(self, "Export conversation", os.path.join(os.path.expanduser("~"), name),
                                                  FORMATS[fmt][0])
            if not path:
                return
        self.files.export(cid, fmt, path)

    def import_conversation(self, path: str | None = None) -> None:
        """Import a JSON export as a new conversation (asks for the file unless given)."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Import conversation", os.path.expanduser("~"),
                                                  FORMATS["json"][0] + ";;All files (*)")
            if not path:
                return
        self.files.import_file(path)

    def _on_imported(self, conversation_id: int) -> None:
        self.tabs.setCurrentWidget(self.chat)
        self.chat.sidebar.refresh(select_id=conversation_id)
        self.chat.open_conversation(conversation_id)
        self.statusBar().showMessage("Conversation imported", 4000)

    # -- models ------------------------------------------------------------------------------------

    def start(self, backend: str, path: str) -> None:
        """Begin loading the start-up model and listing the others; both run in the background.

        If the start-up model is not the embedded one and fails to load (moved, deleted), the
        embedded model is loaded instead, so the app always opens with a working model."""
        try:
            embedded = str(embedded_model_path())
        except LmdeskError as exc:
            embedded = None
            self.banner.show_message(exc.user_text())
        self._fallback = embedded if embedded and path != embedded else None
        self.load_model(backend, path)
        self.refresh_models()

    def refresh_models(self) -> None:
        """List discovered models off the GUI thread (it reads file headers)."""
        self.bridge.call_in_background(
            lambda: discover_models(self.paths, self.settings),
            on_done=self._on_models_found,
            on_error=lambda msg: self.banner.show_message(f"Could not list models: {msg}"),
        )

    def load_model(self, backend: str, path: str) -> None:
        """Ask the engine to load a model; the current one keeps working until it succeeds."""
        job = self.bridge.load_model(backend, path, self.settings.load_options(path))
        self._loads.append(job)
        job.sig_progress.connect(lambda fraction: self._on_load_progress(job, fraction))
        job.sig_finished.connect(lambda model: self._on_model_loaded(job, model))
        job.sig_failed.connect(lambda message: self._on_load_failed(job, message))
        job.sig_cancelled.connect(lambda _none: self._on_load_cancelled(job))
        self.model_bar.set_loading(0.0)
        self.model_bar.set_status(f"Loading {os.path.basename(path.rstrip('/'))}…")

    def cancel_loads(self) -> None:
        """Stop the model loads in progress (the current model stays)."""
        self._fallback = None
        for job in self._loads:
            job.cancel()

    def _on_models_found(self, models: list[ModelInfo]) -> None:
        self.models = models
        current = self.bridge.model.path if self.bridge.model else None
        self.model_bar.set_models(models, current)

    def _on_load_progress(self, job: QtJob, fraction: float) -> None:
        if job is self._loads[0]:  # loads run in order: the first one is the one in progress
            self.model_bar.set_loading(fraction)

    def _load_ended(self, job: QtJob) -> None:
        self._loads.remove(job)
        if not self._loads:  # another load may still be queued behind this one
            self.model_bar.set_loading(None)

    def _on_model_loaded(self, job: QtJob, model) -> None:
        self._load_ended(job)
        self._fallback = None
        self.model_bar.set_status(f"Ready: {model.name}")
        if self.models and model.path not in {m.path for m in self.models}:
            # Opened from disk: remember it, so the picker lists it from now on.
            self.settings.extra_model_paths.append(model.path)
            self.refresh_models()
        self.model_bar.select_path(model.path)
        self.model_label.setText(
            f"{model.name} · {model.backend} · {model.device}"
            + (f" {model.dtype}" if model.dtype else "")
            + f" · context {model.context_length:,}"
        )

    def _on_load_cancelled(self, job: QtJob) -> None:
        self._load_ended(job)
        current = self.bridge.model
        self.model_bar.set_status(f"Ready: {current.name}" if current else "No model loaded")
        still = f" (still using {current.name})" if current else ""
        self.banner.show_message("Loading cancelled" + still, kind="info")

    def _on_load_failed(self, job: QtJob, message: str) -> None:
        self._load_ended(job)
        current = self.bridge.model
        self.model_bar.set_status(f"Ready: {current.name}" if current else "No model loaded")
        if current:
            message += f" (still using {current.name})"
        elif self._fallback:
            message += " — loading the built-in model instead"
            self.load_model("llama", self._fallback)
        self._fallback = None
        self.banner.show_message(message)

    def report_exception(self, kind: type[BaseException], exc: BaseException, tb) -> None:
        """sys.excepthook while the window is open: a bug in a slot becomes a log record with its
        traceback and a banner, and the app keeps running (PySide would only print it to stderr)."""
        log.error("unexpected error", exc_info=(kind, exc, tb))
        self.banner.show_message(f"Something went wrong ({kind.__name__}: {exc}). Details are in the log.")

    def _on_reply_finished(self, stats: GenerationStats) -> None:
        self.speed_label.setText("Last reply: " + stats_line(stats))

    # -- state across sessions ---------------------------------------------------------------------

    def _restore_state(self) -> None:
        """Geometry, splitter sizes, tab and the last conversation from the previous session."""
        try:
            geometry = self.store.kv.get(GEOMETRY_KEY)
            sizes = self.store.kv.get(SPLITTER_KEY)
            tab = self.store.kv.get(TAB_KEY, 0)
            if isinstance(geometry, dict):
                self._restore_geometry(geometry)
            if isinstance(sizes, list) and len(sizes) == 2 and all(isinstance(s, int) for s in sizes):
                self.chat.splitter.setSizes(sizes)
            if isinstance(tab, int) and 0 <= tab < self.tabs.count():
                self.tabs.setCurrentIndex(tab)
        except StoreError as exc:
            self.banner.show_message(exc.user_text())

    def _restore_conversation(self) -> None:
        """Reopen the last conversation, unless the user has already started on another."""
        if self.chat.conversation_id is not None or self.chat.generating:
            return
        try:
            self.chat.restore()
        except StoreError as exc:
            self.banner.show_message(exc.user_text())

    def after_first_paint(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the GUI thread once the window has been painted for the first time
        (soon, if it already has): work the first sight of the window does not need waits for it."""
        if self._after_paint is None:
            QTimer.singleShot(0, callback)
        else:
            self._after_paint.append(callback)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().paintEvent(event)
        if self._after_paint is not None:
            callbacks, self._after_paint = self._after_paint, None
            for callback in callbacks:  # after this paint is on screen, in the order they came
                QTimer.singleShot(0, callback)

    def _restore_geometry(self, g: dict) -> None:
        # Our own record rather than restoreGeometry(): that one shrinks a window to the screen it
        # thinks it will be on before the window exists, and it cannot be tested offscreen.
        try:
            rect = QRect(int(g["x"]), int(g["y"]), int(g["w"]), int(g["h"]))
        except (KeyError, TypeError, ValueError):
            return
        self.resize(rect.size())
        if any(s.availableGeometry().intersects(rect) for s in QGuiApplication.screens()):
            self.move(rect.topLeft())
        if g.get("maximized"):
            self.setWindowState(self.windowState() | Qt.WindowMaximized)

    def _save_state(self) -> None:
        g = self.normalGeometry() if self.isMaximized() else self.geometry()
        try:
            self.store.kv.set(GEOMETRY_KEY, {"x": g.x(), "y": g.y(), "w": g.width(), "h": g.height(),
                                             "maximized": self.isMaximized()})
            self.store.kv.set(SPLITTER_KEY, self.chat.splitter.sizes())
            self.store.kv.set(TAB_KEY, self.tabs.currentIndex())
        except StoreError as exc:
            log.warning("could not save the window state: %s", exc)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self.bridge.model is not None:
            self.settings.default_model = self.bridge.model.path
            self.settings.default_backend = self.bridge.model.backend
        try:
            self.settings.save(self.paths)
        except OSError as exc:
            log.warning("could not save settings: %s", exc)
        self.chat.shutdown()
        self._save_state()
        super().closeEvent(event)
