"""The widgets of the Write pane and how they are laid out (the behaviour is in write_pane).

Drafts on the left; the editor with its counts, and under it the result of an action (hidden
until one runs); the assistant's actions on the right.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton, QSplitter, QVBoxLayout, QWidget,
)

from lmdesk.core.write.actions import ACTIONS, WriteAction
from lmdesk.ui.write.diff_view import DiffView
from lmdesk.ui.write.drafts import DraftList
from lmdesk.ui.write.markdown_highlight import MarkdownHighlighter


class WriteLayout(QWidget):
    """Drafts | editor over result | actions."""

    def _build(self) -> None:
        self.drafts = DraftList(self.store)
        self.editor = QPlainTextEdit()
        self.editor.setPlaceholderText("Start writing. Select a passage and pick an action on the right.")
        font = QFont(self.editor.font())
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.editor.setFont(font)
        self.editor.document().setDocumentMargin(10)
        self.highlighter = MarkdownHighlighter(self.editor.document())
        self.counts = QLabel("")
        self.counts.setStyleSheet("color: palette(mid);")
        editor_box = QWidget()
        eb = QVBoxLayout(editor_box)
        eb.setContentsMargins(0, 0, 0, 0)
        eb.addWidget(self.editor, 1)
        eb.addWidget(self.counts)

        self.result_status = QLabel("")
        self.result_status.setWordWrap(True)
        self.stop_button = QPushButton("Stop", toolTip="Stop the action (Esc); the document is unchanged")
        self.accept_button = QPushButton("Accept all")
        self.apply_button = QPushButton("Apply selected")
        self.apply_button.setToolTip("Apply the changes still marked green (click a change to reject it)")
        self.reject_button = QPushButton("Reject")
        self.diff = DiffView()
        result_box = QWidget()
        rb = QVBoxLayout(result_box)
        rb.setContentsMargins(0, 4, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(self.result_status, 1)
        for b in (self.stop_button, self.reject_button, self.apply_button, self.accept_button):
            bar.addWidget(b)
        rb.addLayout(bar)
        rb.addWidget(self.diff, 1)
        self.result_box = result_box
        self.result_box.hide()
        center = QSplitter(Qt.Vertical)
        center.addWidget(editor_box)
        center.addWidget(result_box)
        center.setStretchFactor(0, 3)
        center.setStretchFactor(1, 2)
        center.setChildrenCollapsible(False)

        actions = QWidget()
        al = QVBoxLayout(actions)
        al.setContentsMargins(0, 0, 0, 0)
        al.addWidget(QLabel("<b>Assistant</b>"))
        self.scope = QLabel("")
        self.scope.setWordWrap(True)
        self.scope.setStyleSheet("color: palette(mid);")
        al.addWidget(self.scope)
        self.action_buttons: dict[WriteAction, QPushButton] = {}
        for action, spec in ACTIONS.items():
            if spec.needs_instruction:
                continue
            button = QPushButton(spec.label)
            button.setToolTip(spec.instruction)
            self.action_buttons[action] = button
            al.addWidget(button)
        al.addSpacing(8)
        al.addWidget(QLabel("Custom instruction"))
        self.instruction = QLineEdit()
        self.instruction.setPlaceholderText("e.g. Make it sound like a pirate")
        self.custom_button = QPushButton("Run instruction")
        self.action_buttons[WriteAction.CUSTOM] = self.custom_button
        al.addWidget(self.instruction)
        al.addWidget(self.custom_button)
        al.addStretch(1)

        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(self.drafts)
        self.splitter.addWidget(center)
        self.splitter.addWidget(actions)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([170, 600, 180])
        self.splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.splitter)
        self._save_timer = QTimer(self, singleShot=True)

