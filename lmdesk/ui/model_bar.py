"""The strip that picks a model, loads it and shows load progress."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from lmdesk.config import Settings
from lmdesk.core.modelfiles.discovery import ModelInfo, human_size
from lmdesk.ui.model_options import ModelOptionsDialog


STATUS_WIDTH = 220  # px at most: long model names must not push the buttons off a narrow window


class ElidedLabel(QLabel):
    """A one-line label that shortens its text with … to whatever width the layout gives it."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.setMaximumWidth(STATUS_WIDTH)
        self.setAlignment(Qt.AlignRight | Qt.AlignVCenter)

    def set_full_text(self, text: str) -> None:
        """Show `text`, elided to fit; the whole text is the tooltip."""
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        """The text before eliding."""
        return self._full

    def sizeHint(self):  # noqa: N802 (Qt name)
        hint = super().sizeHint()
        hint.setWidth(min(STATUS_WIDTH, self.fontMetrics().horizontalAdvance(self._full) + 8))
        return hint

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        self.setText(self.fontMetrics().elidedText(self._full, Qt.ElideMiddle, max(self.width(), 20)))


class ModelBar(QWidget):
    """Model picker, Open… and Load buttons, and a progress bar while a model loads."""

    sig_load_requested = Signal(str, str)
    """The user asked to load (backend, path)."""

    sig_cancel_requested = Signal()
    """The user asked to stop the model load in progress."""

    sig_options_changed = Signal(str, str)
    """The per-model options of (backend, path) were saved; reload to apply them."""

    def __init__(self, settings: Settings, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Model:"))
        self.combo = QComboBox()
        self.combo.setMinimumContentsLength(18)
        self.combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setPlaceholderText("Looking for models…")
        layout.addWidget(self.combo, 1)
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Load a GGUF file or a Hugging Face model folder from disk")
        self.open_button.clicked.connect(self._open_file)
        layout.addWidget(self.open_button)
        self.folder_button = QPushButton("Open folder…")
        self.folder_button.setToolTip("Load a Hugging Face model folder (config, tokenizer, safetensors) with PyTorch")
        self.folder_button.clicked.connect(self._open_folder)
        layout.addWidget(self.folder_button)
        self.options_button = QPushButton("Options…")
        self.options_button.setToolTip("Context size, GPU, precision and LoRA adapter for the selected model")
        self.options_button.clicked.connect(self._edit_options)
        layout.addWidget(self.options_button)
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(self._load_selected)
        layout.addWidget(self.load_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(160)
        self.progress.hide()
        layout.addWidget(self.progress)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop loading; the current model stays")
        self.cancel_button.clicked.connect(self.sig_cancel_requested)
        self.cancel_button.hide()
        layout.addWidget(self.cancel_button)
        self.status = ElidedLabel()
        layout.addWidget(self.status, 1)
        self.set_status("No model loaded")

    def set_status(self, text: str) -> None:
        """Show a short state ("Ready: …", "Loading …"), elided to fit; the whole text as tooltip."""
        self.status.set_full_text(text)

    def set_models(self, models: list[ModelInfo], current_path: str | None = None) -> None:
        """Fill the picker; unreadable files are listed but disabled, with the reason as tooltip."""
        self.combo.clear()
        for m in models:
            label = f"{m.name} · {m.backend} · {m.quantization or 'safetensors'} · {human_size(m.file_size) if m.file_size else '?'}"
            self.combo.addItem(label, (m.backend, m.path))
            idx = self.combo.count() - 1
            self.combo.setItemData(idx, m.error or m.path, role=3)  # Qt.ToolTipRole
            if m.error:
                self.combo.model().item(idx).setEnabled(False)
        self.select_path(current_path)

    def select_path(self, path: str | None) -> None:
        """Point the picker at the model with `path`, if listed."""
        for i in range(self.combo.count()):
            data = self.combo.itemData(i)
            if data and path and data[1] == path:
                self.combo.setCurrentIndex(i)
                return

    def set_loading(self, fraction: float | None) -> None:
        """Show progress (0–1), or hide it with None."""
        self.cancel_button.setVisible(fraction is not None)
        if fraction is None:
            self.progress.hide()
            for button in (self.load_button, self.open_button, self.folder_button, self.options_button):
                button.setEnabled(True)
            return
        self.progress.show()
        self.progress.setValue(int(fraction * 100))
        for button in (self.load_button, self.open_button, self.folder_button, self.options_button):
            button.setEnabled(False)

    def _load_selected(self) -> None:
        data = self.combo.currentData()
        if data:
            self.sig_load_requested.emit(*data)

    def _open_file(self) -> None:
        # Non-native dialog: works offscreen and on every platform the same way.
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a model", str(Path.home()), "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self.sig_load_requested.emit("llama", path)

    def _open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a Hugging Face model folder", str(Path.home()))
        if path:
            self.sig_load_requested.emit("torch", path)

    def _edit_options(self) -> None:
        data = self.combo.currentData()
        if not data:
            return
        if ModelOptionsDialog(self.settings, data[1], data[0], self).exec():
            self.sig_options_changed.emit(*data)
