"""The main window: model bar, error banner, chat, and a status bar with model and speed."""

from __future__ import annotations

import logging
import os

from PySide6.QtWidgets import QLabel, QMainWindow, QTabWidget, QVBoxLayout, QWidget

from lmdesk.config import Paths, Settings
from lmdesk.core.errors import LmdeskError
from lmdesk.core.models import ModelInfo, discover_models, embedded_model_path
from lmdesk.core.params import LoadOptions
from lmdesk.core.stats import GenerationStats
from lmdesk.core.store import Store
from lmdesk.engine.bridge import EngineBridge
from lmdesk.ui.banner import Banner
from lmdesk.ui.chat_box import ChatBox, stats_line
from lmdesk.ui.model_bar import ModelBar
from lmdesk.ui.translate_pane import TranslatePane
from lmdesk.ui.write_pane import WritePane

log = logging.getLogger("lmdesk.ui")


class MainWindow(QMainWindow):
    """Top-level window; owns no model itself — everything goes through the EngineBridge."""

    def __init__(self, bridge: EngineBridge, paths: Paths, settings: Settings, store: Store) -> None:
        super().__init__()
        self.bridge = bridge
        self.paths = paths
        self.settings = settings
        self.store = store
        self._load_ids: set[int] = set()
        self._fallback: str | None = None  # model to load if the start-up one fails
        self.models: list[ModelInfo] = []
        self.setWindowTitle("lmdesk")
        self.resize(980, 720)

        self.banner = Banner()
        self.model_bar = ModelBar()
        self.chat = ChatBox(bridge)
        self.write = WritePane(bridge, store)
        self.translate = TranslatePane(bridge, store)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.chat, "Chat")
        self.tabs.addTab(self.write, "Write")
        self.tabs.addTab(self.translate, "Translate")
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

        self.model_bar.sig_load_requested.connect(self.load_model)
        for pane in (self.chat, self.write, self.translate):
            pane.sig_error.connect(self.banner.show_message)
        self.chat.sig_reply_finished.connect(self._on_reply_finished)
        bridge.sig_load_progress.connect(self._on_load_progress)
        bridge.sig_model_loaded.connect(self._on_model_loaded)
        bridge.sig_failed.connect(self._on_failed)

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
        self.bridge.run_task(
            lambda: discover_models(self.paths, self.settings),
            on_done=self._on_models_found,
            on_error=lambda msg: self.banner.show_message(f"Could not list models: {msg}"),
        )

    def load_model(self, backend: str, path: str) -> None:
        """Ask the engine to load a model; the current one keeps working until it succeeds."""
        options = LoadOptions(
            n_ctx=self.settings.n_ctx, n_threads=self.settings.n_threads, n_gpu_layers=self.settings.n_gpu_layers
        )
        self._load_ids.add(self.bridge.load_model(backend, path, options))
        self.model_bar.set_loading(0.0)
        self.model_bar.status.setText(f"Loading {os.path.basename(path.rstrip('/'))}…")

    # -- engine signals (GUI thread) -------------------------------------------------------
    def _on_models_found(self, models: list[ModelInfo]) -> None:
        self.models = models
        current = self.bridge.model.path if self.bridge.model else None
        self.model_bar.set_models(models, current)

    def _on_load_progress(self, req_id: int, fraction: float) -> None:
        if req_id in self._load_ids:
            self.model_bar.set_loading(fraction)

    def _on_model_loaded(self, req_id: int, model) -> None:
        self._load_ids.discard(req_id)
        self._fallback = None
        self.model_bar.set_loading(None)
        self.model_bar.status.setText(f"Ready: {model.name}")
        self.model_bar.select_path(model.path)
        self.model_label.setText(
            f"{model.name} · {model.backend} · {model.device} · context {model.context_length:,}"
        )

    def _on_failed(self, req_id: int, message: str) -> None:
        if req_id not in self._load_ids:
            return  # generation failures are the chat's to show
        self._load_ids.discard(req_id)
        self.model_bar.set_loading(None)
        current = self.bridge.model
        self.model_bar.status.setText(f"Ready: {current.name}" if current else "No model loaded")
        if current:
            message += f" (still using {current.name})"
        elif self._fallback:
            message += " — loading the built-in model instead"
            self.load_model("llama", self._fallback)
        self._fallback = None
        self.banner.show_message(message)

    def _on_reply_finished(self, stats: GenerationStats) -> None:
        self.speed_label.setText(stats_line(stats))

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self.bridge.model is not None:
            self.settings.default_model = self.bridge.model.path
            self.settings.default_backend = self.bridge.model.backend
        try:
            self.settings.save(self.paths)
        except OSError as exc:
            log.warning("could not save settings: %s", exc)
        self.chat.stop()
        super().closeEvent(event)
