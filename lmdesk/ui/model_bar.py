"""The strip that picks a model, loads it and shows load progress."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)

from lmdesk.core.models import ModelInfo


def human_size(n: int | None) -> str:
    """1536 -> '1.5 KB'; None -> '?'."""
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


class ModelBar(QWidget):
    """Model picker, Open… and Load buttons, and a progress bar while a model loads."""

    sig_load_requested = Signal(str, str)
    """The user asked to load (backend, path)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Model:"))
        self.combo = QComboBox()
        self.combo.setMinimumContentsLength(28)
        self.combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setPlaceholderText("Looking for models…")
        layout.addWidget(self.combo, 1)
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Load a GGUF file or a Hugging Face model folder from disk")
        self.open_button.clicked.connect(self._open_file)
        layout.addWidget(self.open_button)
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(self._load_selected)
        layout.addWidget(self.load_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(160)
        self.progress.hide()
        layout.addWidget(self.progress)
        self.status = QLabel("No model loaded")
        layout.addWidget(self.status)

    def set_models(self, models: list[ModelInfo], current_path: str | None = None) -> None:
        """Fill the picker; unreadable files are listed but disabled, with the reason as tooltip."""
        self.combo.clear()
        for m in models:
            label = f"{m.name} · {m.quantization or m.backend} · {human_size(m.file_size)}"
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
        if fraction is None:
            self.progress.hide()
            self.load_button.setEnabled(True)
            self.open_button.setEnabled(True)
            return
        self.progress.show()
        self.progress.setValue(int(fraction * 100))
        self.load_button.setEnabled(False)
        self.open_button.setEnabled(False)

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
