"""Per-model load options (context, GPU layers, device, dtype, LoRA adapter, trust settings)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from lmdesk.config import Settings

_AUTO = "auto"


class ModelOptionsDialog(QDialog):
    """Edits Settings.model_options[path]; only values that differ from the defaults are kept."""

    def __init__(self, settings: Settings, path: str, backend: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model options")
        self.settings, self.path, self.backend = settings, path, backend
        current = settings.load_options(path)
        form = QFormLayout(self)
        self.n_ctx = QSpinBox(minimum=256, maximum=1_048_576, singleStep=1024, value=current.n_ctx)
        form.addRow("Context size (tokens)", self.n_ctx)
        self.gpu_layers = QSpinBox(minimum=-1, maximum=999, value=current.n_gpu_layers)
        self.gpu_layers.setToolTip("llama.cpp: layers offloaded to the GPU (-1 = all, 0 = CPU only)")
        self.device = QComboBox()
        self.device.addItems([_AUTO, "cuda", "mps", "cpu"])
        self.device.setCurrentText(current.device or _AUTO)
        self.dtype = QComboBox()
        self.dtype.addItems([_AUTO, "bfloat16", "float16", "float32"])
        self.dtype.setCurrentText(current.dtype or _AUTO)
        if backend == "llama":
            form.addRow("GPU layers", self.gpu_layers)
        else:
            form.addRow("Device", self.device)
            form.addRow("Precision", self.dtype)
        self.lora = QLineEdit(current.lora_path or "")
        self.lora.setPlaceholderText("none")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_lora)
        row = QWidget()
        row_layout = QHBoxLayout(row)
        row_layout.setContentsMargins(0, 0, 0, 0)
        row_layout.addWidget(self.lora, 1)
        row_layout.addWidget(browse)
        form.addRow("LoRA adapter", row)
        self.allow_pickle = QCheckBox("Allow pickle checkpoints (.bin/.pt, loaded weights-only)")
        self.allow_pickle.setChecked(current.allow_pickle)
        self.trust_code = QCheckBox("Trust remote code shipped with this model")
        self.trust_code.setChecked(current.trust_remote_code)
        if backend != "llama":
            form.addRow(self.allow_pickle)
            form.addRow(self.trust_code)
        buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse_lora(self) -> None:
        if self.backend == "llama":
            path, _ = QFileDialog.getOpenFileName(self, "LoRA adapter (GGUF)", "", "GGUF adapters (*.gguf)")
        else:
            path = QFileDialog.getExistingDirectory(self, "PEFT adapter folder")
        if path:
            self.lora.setText(path)

    def values(self) -> dict:
        """The overrides the dialog now shows (defaults left out)."""
        chosen = {
            "n_ctx": self.n_ctx.value(),
            "n_gpu_layers": self.gpu_layers.value(),
            "device": None if self.device.currentText() == _AUTO else self.device.currentText(),
            "dtype": None if self.dtype.currentText() == _AUTO else self.dtype.currentText(),
            "lora_path": self.lora.text().strip() or None,
            "allow_pickle": self.allow_pickle.isChecked(),
            "trust_remote_code": self.trust_code.isChecked(),
        }
        base = Settings(n_ctx=self.settings.n_ctx, n_gpu_layers=self.settings.n_gpu_layers).load_options("")
        return {k: v for k, v in chosen.items() if getattr(base, k) != v}

    def accept(self) -> None:  # noqa: D102 - QDialog override
        overrides = self.values()
        if overrides:
            self.settings.model_options[self.path] = overrides
        else:
            self.settings.model_options.pop(self.path, None)
        super().accept()
