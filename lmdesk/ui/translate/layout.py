"""The widgets of the Translate pane and how they are laid out (the behaviour is in translate_pane)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton, QSplitter, QToolButton, QVBoxLayout,
    QWidget,
)

from lmdesk.ui.translate.widgets import LanguagePicker, OutputView

_GLOSSARY_HINT = (
    "One entry per line:\n"
    "  lmdesk            (a term to keep as it is)\n"
    "  invoice = facture (a fixed translation)"
)


class TranslateLayout(QWidget):
    """Pickers and buttons on top, source | output side by side, glossary, status and progress."""

    def _build(self) -> None:
        self.source_picker = LanguagePicker(auto=True)
        self.target_picker = LanguagePicker(auto=False)
        self.swap_button = QToolButton(text="⇄", toolTip="Swap languages (and texts)")
        self.translate_button = QPushButton("Translate")
        self.translate_button.setDefault(True)
        self.translate_button.setToolTip("Translate (Ctrl+Enter)")
        self.stop_button = QPushButton("Stop", toolTip="Stop after keeping the chunks done (Esc)")
        self.resume_button = QPushButton("Resume", toolTip="Continue from the first untranslated chunk")
        self.glossary_button = QToolButton(text="Glossary", checkable=True)
        self.glossary_button.setToolTip("Terms to keep as they are, or to translate a fixed way")
        top = QHBoxLayout()
        top.addWidget(QLabel("From"))
        top.addWidget(self.source_picker)
        top.addWidget(self.swap_button)
        top.addWidget(QLabel("To"))
        top.addWidget(self.target_picker)
        top.addStretch(1)
        top.addWidget(self.glossary_button)
        top.addWidget(self.resume_button)
        top.addWidget(self.stop_button)
        top.addWidget(self.translate_button)

        self.source = QPlainTextEdit()
        self.source.setPlaceholderText("Type or paste text of any length. Paragraphs, headings and lists are kept.")
        self.output = OutputView()
        self.output.setPlaceholderText("The translation appears here.")
        self.clear_button = QToolButton(text="Clear", toolTip="Clear both texts")
        self.copy_button = QToolButton(text="Copy", toolTip="Copy the translation")
        self.source_count = QLabel("")
        self.source_count.setStyleSheet("color: palette(mid);")
        src_box, out_box = QWidget(), QWidget()
        src_layout, out_layout = QVBoxLayout(src_box), QVBoxLayout(out_box)
        for lay in (src_layout, out_layout):
            lay.setContentsMargins(0, 0, 0, 0)
        src_bar, out_bar = QHBoxLayout(), QHBoxLayout()
        src_bar.addWidget(self.source_count, 1)
        src_bar.addWidget(self.clear_button)
        self.detail = QLabel("")
        self.detail.setStyleSheet("color: palette(mid);")
        out_bar.addWidget(self.detail, 1)
        out_bar.addWidget(self.copy_button)
        src_layout.addWidget(self.source, 1)
        src_layout.addLayout(src_bar)
        out_layout.addWidget(self.output, 1)
        out_layout.addLayout(out_bar)
        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(src_box)
        self.splitter.addWidget(out_box)
        self.splitter.setChildrenCollapsible(False)

        self.glossary = QPlainTextEdit()
        self.glossary.setPlaceholderText(_GLOSSARY_HINT)
        self.glossary.setMaximumHeight(96)
        self.glossary.setVisible(False)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.status = QLabel("Ready.")
        self.status.setStyleSheet("color: palette(mid);")
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.progress, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.glossary)
        layout.addLayout(bottom)
        self._save_timer = QTimer(self, singleShot=True, interval=600)

