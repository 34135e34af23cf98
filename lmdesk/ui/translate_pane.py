"""The Translate pane: source and target pickers, text of any length translated chunk by chunk.

Flow: Translate → the text is planned (language detection + chunking, lmdesk.core.translate.plan)
in `bridge.call_in_background`, off the GUI thread → the TranslationRunner sends one chunk at a time, its
answer streams into the output, and the cleaned translation replaces it when the chunk ends →
the progress bar says "Chunk i of n". Stop keeps the finished chunks; Resume continues from the
first untranslated one, as long as the text, languages and glossary are unchanged (otherwise
Translate starts over). The output has the source's structure because the chunker owns it: the
model never sees a blank line or a Markdown marker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import QWidget

from lmdesk.core.text.chunk_budget import DEFAULT_MAX_CHUNK_TOKENS
from lmdesk.core.text.languages import AUTO, language_name
from lmdesk.core.translate.glossary import parse_glossary
from lmdesk.core.translate.plan import TranslateOptions, TranslationPlan, plan_translation
from lmdesk.ui.translate.runner import TranslationRunner
from lmdesk.ui.translate.layout import TranslateLayout
from lmdesk.ui.translate.widgets import set_text_direction

log = logging.getLogger("lmdesk.ui")

_KV_LANGUAGES = "translate.languages"
_KV_GLOSSARY = "translate.glossary"


@dataclass
class TranslateSettings:
    """Tunables of the pane (tests and screenshots shrink chunks and answers)."""

    max_chunk_tokens: int = DEFAULT_MAX_CHUNK_TOKENS
    max_tokens_cap: int | None = None
    temperature: float = 0.2
    seed: int | None = None


class TranslatePane(TranslateLayout):
    """Translate a text of any length between two languages, keeping its structure."""

    sig_error = Signal(str)
    """A one-line error for the window's banner."""
    sig_progress = Signal(int, int)
    """(chunks done, chunks in total) after planning and after each chunk."""
    sig_done = Signal(str)
    """(output) a translation finished, stopped or failed: the pane is idle again."""

    def __init__(self, bridge, store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge, self.store = bridge, store
        self.settings = TranslateSettings()
        self.runner = TranslationRunner(bridge, self)
        self._planning: int | None = None  # token of the plan being made; a stale one is ignored
        self._plan_seq = 0
        self._plan_key: tuple | None = None  # (text, options) the current plan was made for
        self._build()
        self._restore()
        self._wire()
        self._update_buttons()

    def _wire(self) -> None:
        self.translate_button.clicked.connect(self.translate)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self.resume)
        self.swap_button.clicked.connect(self.swap)
        self.copy_button.clicked.connect(self.copy)
        self.clear_button.clicked.connect(self.clear)
        self.glossary_button.toggled.connect(self.glossary.setVisible)
        self.source.textChanged.connect(self._on_source_changed)
        self.glossary.textChanged.connect(self._on_glossary_changed)
        self.source_picker.currentIndexChanged.connect(self._on_languages_changed)
        self.target_picker.currentIndexChanged.connect(self._on_languages_changed)
        self._save_timer.timeout.connect(self._save_state)
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.translate, context=Qt.WidgetWithChildrenShortcut)
        QShortcut(QKeySequence(Qt.Key_Escape), self, activated=self.stop, context=Qt.WidgetWithChildrenShortcut)
        self.runner.sig_chunk_started.connect(self._on_chunk_started)
        self.runner.sig_text.connect(self.output.append_stream)
        self.runner.sig_chunk_done.connect(self._on_chunk_done)
        self.runner.sig_stopped.connect(self._on_stopped)
        self.runner.sig_finished.connect(self._on_finished)
        self.runner.sig_failed.connect(self._on_failed)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self._save_state)

    def _restore(self) -> None:
        langs = self.store.kv.get(_KV_LANGUAGES) or [AUTO, "en"]
        self.source_picker.set_code(langs[0])
        self.target_picker.set_code(langs[1])
        self.glossary.setPlainText(self.store.kv.get(_KV_GLOSSARY) or "")
        self.glossary_button.setText(self._glossary_label())
        set_text_direction(self.output, self.target_picker.code())

    # -- public actions ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Planning or translating now."""
        return self._planning is not None or self.runner.running

    def options(self) -> TranslateOptions:
        """What the pickers, glossary and settings ask for now."""
        s = self.settings
        return TranslateOptions(
            target=self.target_picker.code(), source=self.source_picker.code(),
            glossary=tuple(parse_glossary(self.glossary.toPlainText())),
            max_chunk_tokens=s.max_chunk_tokens, temperature=s.temperature, seed=s.seed,
            max_tokens_cap=s.max_tokens_cap,
        )

    def translate(self) -> None:
        """Plan the source text (off the GUI thread), then translate it chunk by chunk."""
        text = self.source.toPlainText()
        if self.busy or not text.strip():
            return
        model = self.bridge.model
        if model is None:
            self.sig_error.emit("No model is loaded yet — wait for it to finish loading, or pick one above.")
            return
        options = self.options()
        self.runner.reset()
        self.output.reset()
        self._plan_key = None
        self._plan_seq += 1
        token = self._planning = self._plan_seq
        self.status.setText("Preparing…")
        self.progress.setRange(0, 0)  # busy indicator while planning
        self._update_buttons()
        n_ctx = model.context_length
        self.bridge.call_in_background(
            lambda: plan_translation(text, n_ctx, options),  # no widgets touched in here
            on_done=lambda plan: self._on_planned(token, (text, options), plan),
            on_error=lambda message: self._on_plan_failed(token, message),
        )

    def stop(self) -> None:
        """Stop translating; the chunks done so far stay (Resume continues)."""
        if self._planning is not None:
            self._planning = None
            self._reset_progress()
            self.status.setText("Stopped.")
            self._update_buttons()
        self.runner.stop()

    def resume(self) -> None:
        """Continue the stopped translation from its first untranslated chunk."""
        if self._can_resume():
            self.status.setText("Translating…")
            self.runner.resume()
            self._update_buttons()

    def swap(self) -> None:
        """Swap the languages; a finished translation of the source text becomes the new source.

        A stopped (partial) translation, or one of a source edited since, is not moved: that would
        throw away the untranslated rest of the source. Then only the languages swap; swapping
        back restores them (and Resume, unless the source language had been detected).
        """
        if self.busy:
            return
        plan = self.runner.plan
        source = self.source_picker.code()
        if source == AUTO:
            source = plan.detected if plan and plan.detected else None
            if source is None:
                self.status.setText("Choose the source language first: it was not detected yet.")
                return
        target = self.target_picker.code()
        translated = self.output.toPlainText()
        complete = plan is not None and plan.finished and plan.text == self.source.toPlainText()
        self.source_picker.set_code(target)
        self.target_picker.set_code(source)
        if translated.strip() and not complete:
            self.status.setText("Swapped the languages only: the translation is not complete.")
        elif translated.strip():
            self.source.setPlainText(translated)
            self.output.reset()
            self.runner.reset()

    def copy(self) -> None:
        """Put the translation on the clipboard."""
        QGuiApplication.clipboard().setText(self.output.toPlainText())
        self.status.setText("Copied the translation.")

    def clear(self) -> None:
        """Stop, and empty both texts."""
        self._planning = None
        self.runner.reset()
        self._plan_key = None
        self.source.clear()
        self.output.reset()
        self._reset_progress()
        self.status.setText("Ready.")
        self._update_buttons()

    # -- planning and runner events ---------------------------------------------------------------
    def _on_planned(self, token: int, key: tuple, plan: TranslationPlan) -> None:
        if token != self._planning:
            return  # cleared, stopped or restarted meanwhile
        self._planning = None
        self._plan_key = key
        self.source_picker.show_detected(plan.detected)
        set_text_direction(self.source, plan.source)
        self.progress.setRange(0, max(1, plan.total))
        self.progress.setValue(0)
        self.sig_progress.emit(0, plan.total)
        log.info("translation planned: %d chunks (%d to translate), budget %d tokens",
                 len(plan.chunks), plan.total, plan.budget.chunk_tokens)
        self.status.setText("Translating…")
        self.runner.start(plan)
        self._update_buttons()

    def _on_plan_failed(self, token: int, message: str) -> None:
        if token != self._planning:
            return
        self._planning = None
        self._reset_progress()
        self.status.setText("Could not prepare the text.")
        self.sig_error.emit(message)
        self._update_buttons()

    def _on_chunk_started(self, index: int, ordinal: int, total: int) -> None:
        plan = self.runner.plan
        self.progress.setFormat(f"Chunk {ordinal} of {total}")
        self.output.begin_stream(plan.chunks[index].prefix if plan else "")

    def _on_chunk_done(self, index: int, output: str) -> None:
        plan = self.runner.plan
        self.output.commit(output)
        if plan is not None:
            self.progress.setValue(plan.done)
            self.sig_progress.emit(plan.done, plan.total)
        self._show_speed()

    def _on_stopped(self) -> None:
        self.output.discard_stream()
        plan = self.runner.plan
        done = f" after {plan.done} of {plan.total} chunks" if plan else ""
        self.status.setText(f"Stopped{done}. Resume continues from there.")
        self.progress.setFormat(self.progress.format() + " (stopped)")
        self._update_buttons()
        self.sig_done.emit(self.output.committed_text)

    def _on_finished(self, output: str) -> None:
        plan = self.runner.plan
        self.output.commit(output)
        total = plan.total if plan else 0
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(max(1, total))
        self.progress.setFormat(f"Done — {total} chunk{'s' if total != 1 else ''}")
        self.status.setText("Done.")
        self._show_speed()
        self._update_buttons()
        self.sig_done.emit(output)

    def _on_failed(self, message: str) -> None:
        self.output.discard_stream()
        self.status.setText("A chunk failed; Resume retries it.")
        self.sig_error.emit(message)
        self._update_buttons()
        self.sig_done.emit(self.output.committed_text)

    # -- helpers ----------------------------------------------------------------------------------
    def _can_resume(self) -> bool:
        if not self.runner.resumable or self._plan_key is None or self.busy:
            return False
        return self._plan_key == (self.source.toPlainText(), self.options())

    def _update_buttons(self) -> None:
        busy = self.busy
        has_text = bool(self.source.toPlainText().strip())
        self.translate_button.setEnabled(not busy and has_text)
        self.stop_button.setEnabled(busy)
        self.resume_button.setEnabled(self._can_resume())
        self.swap_button.setEnabled(not busy)
        for w in (self.source_picker, self.target_picker, self.glossary):
            w.setEnabled(not busy)
        self.source.setReadOnly(busy)  # the plan is of this exact text: keep it until Stop

    def _reset_progress(self) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")

    def _show_speed(self) -> None:
        plan, rate = self.runner.plan, self.runner.tokens_per_second
        parts = []
        if plan is not None and plan.detected and self.source_picker.code() == AUTO:
            parts.append(f"detected {language_name(plan.detected)}")
        if rate and self.runner.seconds >= 0.2:  # a rate over a few milliseconds means nothing
            parts.append(f"{self.runner.tokens} tokens · {rate:.1f} tok/s")
        self.detail.setText(" · ".join(parts))

    def _glossary_label(self) -> str:
        n = len(parse_glossary(self.glossary.toPlainText()))
        return f"Glossary ({n})" if n else "Glossary"

    def _on_source_changed(self) -> None:
        text = self.source.toPlainText()
        self.source_count.setText(f"{len(text):,} characters" if text else "")
        self._update_buttons()

    def _on_glossary_changed(self) -> None:
        self.glossary_button.setText(self._glossary_label())
        self._save_timer.start()
        self._update_buttons()

    def _on_languages_changed(self) -> None:
        set_text_direction(self.output, self.target_picker.code())
        if self.source_picker.code() != AUTO:
            self.source_picker.show_detected(None)
            set_text_direction(self.source, self.source_picker.code())
        self._save_timer.start()
        self._update_buttons()

    def _save_state(self) -> None:
        """Languages and glossary survive a restart (store.kv)."""
        try:
            self.store.kv.set(_KV_LANGUAGES, [self.source_picker.code(), self.target_picker.code()])
            self.store.kv.set(_KV_GLOSSARY, self.glossary.toPlainText())
        except Exception as exc:  # noqa: BLE001 - a settings write must never break translating
            log.warning("could not save the Translate pane's settings: %s", exc)
