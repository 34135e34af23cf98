"""Per-conversation settings (system prompt, sampling, context policy) and presets (personas)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLineEdit,
    QPlainTextEdit, QPushButton, QSpinBox, QVBoxLayout,
)

from lmdesk.core.chat.conversation import ConversationSettings
from lmdesk.core.params import ContextPolicy
from lmdesk.core.storage.store import Store, StoreError

_POLICIES = {ContextPolicy.DROP_OLDEST.value: "Drop the oldest turns when full",
             ContextPolicy.ERROR.value: "Refuse when full (show an error)"}


def _double(lo: float, hi: float, step: float, decimals: int = 2) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    return box


class SettingsDialog(QDialog):
    """Edits one conversation's ConversationSettings; presets are shared by all conversations."""

    sig_saved = Signal(object)
    """(ConversationSettings) the user clicked OK."""
    sig_error = Signal(str)
    """A one-line error for the banner."""

    def __init__(self, store: Store, settings: ConversationSettings, title: str = "", parent=None) -> None:
        super().__init__(parent)
        self.store = store
        self.setWindowTitle(f"Settings — {title}" if title else "Chat settings")
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setPlaceholderText("e.g. You are a concise assistant that answers in English.")
        self.system_prompt.setMaximumHeight(110)
        self.temperature = _double(0.0, 2.0, 0.05)
        self.top_p = _double(0.0, 1.0, 0.01)
        self.top_k = QSpinBox()
        self.top_k.setRange(0, 1000)
        self.min_p = _double(0.0, 1.0, 0.01)
        self.repeat_penalty = _double(0.5, 2.0, 0.01)
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 131072)
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2**31 - 1)
        self.seed.setSpecialValueText("random")
        self.context_policy = QComboBox()
        for value, label in _POLICIES.items():
            self.context_policy.addItem(label, value)
        form = QFormLayout()
        form.addRow("System prompt", self.system_prompt)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Top-k", self.top_k)
        form.addRow("Min-p", self.min_p)
        form.addRow("Repeat penalty", self.repeat_penalty)
        form.addRow("Max tokens", self.max_tokens)
        form.addRow("Seed", self.seed)
        form.addRow("Context", self.context_policy)

        self.presets = QComboBox()
        self.apply_preset_button = QPushButton("Apply")
        self.delete_preset_button = QPushButton("Delete")
        self.preset_name = QLineEdit()
        self.preset_name.setPlaceholderText("Preset name, e.g. Terse coder")
        self.save_preset_button = QPushButton("Save as preset")
        pick = QHBoxLayout()
        pick.addWidget(self.presets, 1)
        pick.addWidget(self.apply_preset_button)
        pick.addWidget(self.delete_preset_button)
        save = QHBoxLayout()
        save.addWidget(self.preset_name, 1)
        save.addWidget(self.save_preset_button)
        group = QGroupBox("Presets (personas, shared by all chats)")
        gl = QVBoxLayout(group)
        gl.addLayout(pick)
        gl.addLayout(save)

        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel | QDialogButtonBox.RestoreDefaults)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(group)
        layout.addWidget(self.buttons)

        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.RestoreDefaults).clicked.connect(
            lambda: self.set_values(ConversationSettings()))
        self.apply_preset_button.clicked.connect(self.apply_preset)
        self.save_preset_button.clicked.connect(self.save_preset)
        self.delete_preset_button.clicked.connect(self.delete_preset)
        self.set_values(settings)
        self.refresh_presets()

    def set_values(self, s: ConversationSettings) -> None:
        """Fill the fields."""
        self.system_prompt.setPlainText(s.system_prompt)
        self.temperature.setValue(s.temperature)
        self.top_p.setValue(s.top_p)
        self.top_k.setValue(s.top_k)
        self.min_p.setValue(s.min_p)
        self.repeat_penalty.setValue(s.repeat_penalty)
        self.max_tokens.setValue(s.max_tokens)
        self.seed.setValue(-1 if s.seed is None else s.seed)
        self.context_policy.setCurrentIndex(max(0, self.context_policy.findData(s.context_policy)))

    def values(self) -> ConversationSettings:
        """The settings the fields describe."""
        return ConversationSettings(
            system_prompt=self.system_prompt.toPlainText().strip(),
            temperature=round(self.temperature.value(), 4), top_p=round(self.top_p.value(), 4),
            top_k=self.top_k.value(), min_p=round(self.min_p.value(), 4),
            repeat_penalty=round(self.repeat_penalty.value(), 4), max_tokens=self.max_tokens.value(),
            seed=None if self.seed.value() < 0 else self.seed.value(),
            context_policy=self.context_policy.currentData(),
        )

    def refresh_presets(self, select: str | None = None) -> None:
        """Re-read the preset list."""
        self.presets.clear()
        try:
            for p in self.store.presets.list():
                self.presets.addItem(p.name, p.id)
        except StoreError as exc:
            self.sig_error.emit(exc.user_text())
        if select is not None:
            self.presets.setCurrentIndex(max(0, self.presets.findText(select)))
        has = self.presets.count() > 0
        self.apply_preset_button.setEnabled(has)
        self.delete_preset_button.setEnabled(has)

    def apply_preset(self) -> None:
        """Fill the fields from the chosen preset (OK saves them to the conversation)."""
        pid = self.presets.currentData()
        if pid is not None:
            self.set_values(self.store.presets.get(pid).settings)

    def save_preset(self) -> None:
        """Save the fields as a preset under the typed name (overwrites one of the same name)."""
        name = self.preset_name.text().strip()
        if not name:
            self.preset_name.setFocus()
            return
        try:
            self.store.presets.save(name, self.values())
        except StoreError as exc:
            self.sig_error.emit(exc.user_text())
        self.preset_name.clear()
        self.refresh_presets(select=name)

    def delete_preset(self) -> None:
        """Delete the chosen preset."""
        pid = self.presets.currentData()
        if pid is not None:
            self.store.presets.delete(pid)
            self.refresh_presets()

    def accept(self) -> None:  # noqa: D102 - QDialog's
        self.sig_saved.emit(self.values())
        super().accept()
