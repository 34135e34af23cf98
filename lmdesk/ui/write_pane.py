"""The Write pane: a plain-text / Markdown editor with drafts and an assistant for the selection.

An action works on the selection, or on the whole document when nothing is selected (Continue
writing writes at the cursor). Its answer streams into the result view, is cleaned of chatter
(lmdesk.core.text.reply_clean), then shown as a word-level diff: Accept all, Apply selected (after
clicking changes to reject them), or Reject. Accepting is one undo step (one edit block).

No text can be lost while an action runs: the editor is LOCKED (read-only, drafts cannot be
switched) from the moment an action starts until its result is accepted, rejected, stopped or
has failed, so the range the result replaces cannot move under it. The range is highlighted
meanwhile. Drafts are saved to `store.drafts` 700 ms after the last keystroke, and at once when
another draft is opened or the app quits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut, QTextCursor, QTextFormat
from PySide6.QtWidgets import QTextEdit, QWidget

from lmdesk.core.stats import GenerationStats
from lmdesk.core.messages import ChatMessage
from lmdesk.engine.bridge import QtJob
from lmdesk.core.write.actions import ACTIONS, WriteAction
from lmdesk.core.text.word_diff import apply, diff_stats
from lmdesk.core.write.run import ActionError, ActionRun, prepare_action
from lmdesk.ui.write.editor_text import count_words, to_index, to_position
from lmdesk.ui.write.drafts import draft_label
from lmdesk.ui.token_count import TokenCounter
from lmdesk.ui.write.layout import WriteLayout

log = logging.getLogger("lmdesk.ui")

_KV_CURRENT = "write.current_draft"


@dataclass
class WriteSettings:
    """Tunables of the pane (tests and screenshots fix the seed)."""

    temperature: float = 0.5
    seed: int | None = None
    autosave_ms: int = 700


class WritePane(WriteLayout):
    """Drafts, an editor, and writing actions whose results are reviewed as a diff."""

    sig_error = Signal(str)
    """A one-line error for the window's banner."""
    sig_state = Signal(str)
    """(state) 'idle', 'running' or 'review' — the action life-cycle, for tests and the window."""

    def __init__(self, bridge, store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge, self.store = bridge, store
        self.settings = WriteSettings()
        self.draft_id: int | None = None
        self.run: ActionRun | None = None
        self._job: QtJob | None = None  # the running action's engine job
        self.state = "idle"
        self._selection: tuple[int, int] | None = None  # (anchor, position) before the action
        self._loading = False  # setPlainText of a draft is not an edit to save
        self.counter = TokenCounter(bridge, self)
        self.counter.sig_counted.connect(self._on_counted)
        self._build()
        self._wire()
        self._open_initial()
        self._set_state("idle")

    def _wire(self) -> None:
        self.editor.textChanged.connect(self._on_text_changed)
        self.editor.selectionChanged.connect(self._update_scope)
        self.editor.cursorPositionChanged.connect(self._update_scope)
        for action, button in self.action_buttons.items():
            button.clicked.connect(lambda _=False, a=action: self.run_action(a))
        self.instruction.returnPressed.connect(lambda: self.run_action(WriteAction.CUSTOM))
        self.stop_button.clicked.connect(self.stop)
        self.accept_button.clicked.connect(self.accept_all)
        self.apply_button.clicked.connect(self.apply_selected)
        self.reject_button.clicked.connect(self.reject)
        self.diff.sig_choice_changed.connect(self._on_choice_changed)
        self.drafts.sig_open.connect(self.open_draft)
        self.drafts.sig_new.connect(self.new_draft)
        self.drafts.sig_about_to_delete.connect(lambda _id: self.save())
        self.drafts.sig_deleted.connect(self._on_draft_deleted)
        self.drafts.sig_restored.connect(self.open_draft)
        self.bridge.sig_model_changed.connect(lambda *_: self._update_counts())
        self._save_timer.setInterval(self.settings.autosave_ms)
        self._save_timer.timeout.connect(self.save)
        QShortcut(QKeySequence(Qt.Key_Escape), self, activated=self.stop, context=Qt.WidgetWithChildrenShortcut)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.save)

    # -- drafts -----------------------------------------------------------------------------------
    def _open_initial(self) -> None:
        drafts = self.store.drafts.list()
        wanted = self.store.kv.get(_KV_CURRENT)
        ids = [d.id for d in drafts]
        self.drafts.refresh(None)
        if ids:
            self.open_draft(wanted if wanted in ids else ids[0])
        else:
            self._show_draft(None, "")

    def open_draft(self, draft_id: int) -> None:
        """Save the current draft and open another."""
        if self.state != "idle" or draft_id == self.draft_id:
            self.drafts.select(self.draft_id)
            return
        self.save()
        try:
            draft = self.store.drafts.get(draft_id)
        except KeyError:
            return
        self._show_draft(draft.id, draft.text)
        self.drafts.refresh(draft.id)

    def new_draft(self) -> None:
        """Save the current draft and start an empty one (stored on its first edit)."""
        if self.state != "idle":
            return
        self.save()
        self._show_draft(None, "")
        self.drafts.select(None)
        self.editor.setFocus()

    def save(self) -> None:
        """Write the editor's text to the current draft now (creating it on the first edit)."""
        self._save_timer.stop()
        text = self.editor.toPlainText()
        try:
            if self.draft_id is None:
                if not text.strip():
                    return
                self.draft_id = self.store.drafts.create("", text)
                self.store.kv.set(_KV_CURRENT, self.draft_id)
                self.drafts.refresh(self.draft_id)
                return
            if self.store.drafts.get(self.draft_id).text != text:
                self.store.drafts.update(self.draft_id, text=text)
                draft = self.store.drafts.get(self.draft_id)
                self.drafts.update_label(draft.id, draft.title, draft.text)
        except Exception as exc:  # noqa: BLE001 - say so, keep the text in the editor
            log.warning("could not save draft %s", self.draft_id, exc_info=True)
            self.sig_error.emit(f"Could not save the draft: {exc}")

    def _show_draft(self, draft_id: int | None, text: str) -> None:
        self._loading = True
        self.draft_id = draft_id
        self.editor.setPlainText(text)  # also starts a fresh undo history for this draft
        self.editor.moveCursor(QTextCursor.End)  # ready to go on writing where the draft stops
        self._loading = False
        if draft_id is not None:
            self.store.kv.set(_KV_CURRENT, draft_id)
        self._update_counts()
        self._update_scope()

    def _on_draft_deleted(self, draft_id: int) -> None:
        if draft_id != self.draft_id:
            self.drafts.refresh(self.draft_id)
            return
        self._save_timer.stop()
        self._show_draft(None, "")  # the deleted text must not be saved again as a new draft
        remaining = [d.id for d in self.store.drafts.list()]
        if remaining:
            self.open_draft(remaining[0])
        else:
            self.drafts.refresh(None)

    def _on_text_changed(self) -> None:
        self._update_counts()
        if not self._loading:
            self._save_timer.start()

    # -- actions ----------------------------------------------------------------------------------
    def run_action(self, action: WriteAction) -> None:
        """Run `action` on the selection (or the whole document, or at the cursor)."""
        if self.state != "idle":
            return
        model = self.bridge.model
        if model is None:
            self.sig_error.emit("No model is loaded yet — wait for it to finish loading, or pick one above.")
            return
        text = self.editor.toPlainText()
        cursor = self.editor.textCursor()
        try:
            run = prepare_action(
                action, text, to_index(text, cursor.selectionStart()), to_index(text, cursor.selectionEnd()),
                n_ctx=model.context_length, instruction=self.instruction.text(),
                temperature=self.settings.temperature, seed=self.settings.seed,
            )
        except ActionError as exc:
            self.result_box.show()
            self.diff.show_text("")
            self.result_status.setText(str(exc))
            return
        self.save()
        job = self._job = self.bridge.generate(run.messages, run.params)
        job.sig_text.connect(lambda text: self._on_text(job, text))
        job.sig_finished.connect(lambda stats: self._on_finished(job, stats))
        job.sig_cancelled.connect(lambda _stats: self._on_cancelled(job))
        job.sig_failed.connect(lambda message: self._on_failed(job, message))
        self.run = run
        # Show the tinted target instead of the selection; it comes back if nothing is applied.
        self._selection = (cursor.anchor(), cursor.position())
        cursor.clearSelection()
        self.editor.setTextCursor(cursor)
        self.diff.show_text("")
        self.result_status.setText(f"{ACTIONS[action].label.rstrip('…')}: writing… (Esc stops)")
        self._set_state("running")

    def stop(self) -> None:
        """Stop a running action; the document stays as it was."""
        if self.state == "running" and self._job is not None:
            self._job.cancel()

    def accept_all(self) -> None:
        """Apply every change of the diff (one undo step)."""
        if self.state == "review":
            self._apply(set(self.diff.changes))

    def apply_selected(self) -> None:
        """Apply the changes still accepted in the diff view (one undo step)."""
        if self.state == "review":
            self._apply(set(self.diff.accepted))

    def reject(self) -> None:
        """Discard the result; the document stays as it was."""
        if self.state == "review":
            self.result_status.setText("Rejected: the document is unchanged.")
            self._end_run()

    def _apply(self, accepted: set[int]) -> None:
        run = self.run
        assert run is not None
        text = self.editor.toPlainText()
        if text[run.start:run.end] != run.original:  # cannot happen while locked; never guess
            self.sig_error.emit("The document changed under the result; nothing was applied.")
            self._end_run()
            return
        cursor = QTextCursor(self.editor.document())
        # One edit block = one undo step. Changes are applied from the last to the first, so the
        # offsets of the earlier ones stay valid; untouched text keeps its place (and the view).
        cursor.beginEditBlock()
        try:
            for i in sorted(accepted, reverse=True):
                h = run.hunks[i]
                start, end = run.start + h.old_span[0], run.start + h.old_span[1]
                cursor.setPosition(to_position(text, start))
                cursor.setPosition(to_position(text, end), QTextCursor.KeepAnchor)
                cursor.insertText(h.new_text)
        finally:
            cursor.endEditBlock()
        new_text = apply(run.original, run.hunks, accepted)
        end = to_position(self.editor.toPlainText(), run.start + len(new_text))
        caret = self.editor.textCursor()
        caret.setPosition(end)
        self.editor.setTextCursor(caret)
        n = len(accepted)
        self.result_status.setText(f"Applied {n} change{'s' if n != 1 else ''} (Ctrl+Z undoes it).")
        self._end_run(applied=True)
        self.save()

    # -- job signals (GUI thread) ----------------------------------------------------------------
    def _mine(self, job: QtJob) -> bool:
        return self.state == "running" and self.run is not None and job is self._job

    def _on_text(self, job: QtJob, text: str) -> None:
        if self._mine(job):
            self.run.pieces.append(text)
            self.diff.append_text(text)

    def _on_cancelled(self, job: QtJob) -> None:
        if self._mine(job):
            self.diff.show_text(self.run.raw)
            self.result_status.setText("Stopped: the document is unchanged. The partial answer is shown below.")
            self._end_run()

    def _on_finished(self, job: QtJob, stats: GenerationStats) -> None:
        if not self._mine(job):
            return
        run = self.run
        reason = stats.stop_reason
        result = run.finish(reason)
        cut = " (cut short at the length limit)" if reason == "length" else ""
        if not result.strip():
            self.result_status.setText(f"The model returned nothing{cut}.")
            self._end_run()
        elif not run.hunks or all(not h.is_change for h in run.hunks):
            self.result_status.setText(f"No changes suggested{cut}.")
            self._end_run()
        else:
            self.diff.show_diff(run.hunks)
            ins, dels = diff_stats(run.hunks)
            self.result_status.setText(
                f"{len(self.diff.changes)} changes (+{ins} / −{dels} words){cut}. Click a change to reject it."
            )
            self._set_state("review")

    def _on_failed(self, job: QtJob, message: str) -> None:
        if self._mine(job):
            self.result_status.setText("The action failed: the document is unchanged.")
            self._end_run()
            self.sig_error.emit(message)

    # -- state ------------------------------------------------------------------------------------
    def _end_run(self, applied: bool = False) -> None:
        self.run = self._job = None
        self._set_state("idle")
        if not applied and self._selection is not None:
            anchor, position = self._selection
            cursor = self.editor.textCursor()
            cursor.setPosition(anchor)
            cursor.setPosition(position, QTextCursor.KeepAnchor)
            self.editor.setTextCursor(cursor)  # the same passage, ready for another action
        self._selection = None

    def _set_state(self, state: str) -> None:
        self.state = state
        idle, running, review = state == "idle", state == "running", state == "review"
        self.editor.setReadOnly(not idle)  # the lock: see the module docstring
        self.drafts.setEnabled(idle)
        for button in self.action_buttons.values():
            button.setEnabled(idle)
        self.instruction.setEnabled(idle)
        self.stop_button.setVisible(running)
        for b in (self.accept_button, self.apply_button, self.reject_button):
            b.setVisible(review)
        if not idle:
            self.result_box.show()
        self._highlight_target()
        self._update_scope()
        self.sig_state.emit(state)

    def _highlight_target(self) -> None:
        """Tint the range the running action will replace (or mark the insertion point)."""
        selections = []
        run = self.run
        if run is not None and self.state != "idle":
            text = self.editor.toPlainText()
            sel = QTextEdit.ExtraSelection()
            sel.format.setBackground(QColor(255, 214, 102, 90))
            if run.start == run.end:  # an insertion point: tint its line
                sel.format.setProperty(QTextFormat.FullWidthSelection, True)
            cursor = QTextCursor(self.editor.document())
            cursor.setPosition(to_position(text, run.start))
            cursor.setPosition(to_position(text, run.end), QTextCursor.KeepAnchor)
            sel.cursor = cursor
            selections.append(sel)
        self.editor.setExtraSelections(selections)

    def _on_choice_changed(self, accepted: int, total: int) -> None:
        self.apply_button.setText(f"Apply {accepted} of {total}")
        self.apply_button.setEnabled(accepted > 0)

    def _update_counts(self) -> None:
        text = self.editor.toPlainText()
        self.counts.setText(f"{count_words(text):,} words · {len(text):,} characters")
        self.counter.request(lambda: [[ChatMessage("user", self.editor.toPlainText())]])

    def _on_counted(self, counts: list) -> None:
        (count,) = counts
        text = self.editor.toPlainText()
        self.counts.setText(f"{count_words(text):,} words · {len(text):,} characters · "
                            f"{count.tokens:,} / {count.context_length:,} tokens")
        self.counts.setToolTip("Tokens of the document with the loaded model's tokenizer, against its context length")

    def _update_scope(self) -> None:
        if self.state != "idle":
            self.scope.setText("The document is locked until you accept or reject the result.")
            return
        cursor = self.editor.textCursor()
        if cursor.hasSelection():
            words = count_words(cursor.selectedText())
            self.scope.setText(f"Actions work on the selection ({words:,} words).")
        else:
            self.scope.setText("Actions work on the whole document; Continue writes at the cursor.")

    def title(self) -> str:
        """The open draft's label (for the window or tests)."""
        if self.draft_id is None:
            return draft_label("", self.editor.toPlainText())
        draft = self.store.drafts.get(self.draft_id)
        return draft_label(draft.title, self.editor.toPlainText())
