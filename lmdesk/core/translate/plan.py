"""One translation job, chunk by chunk: shared by the Translate pane, `lmdesk translate` and the
benchmark, so all three chunk, prompt, clean and reassemble the same way.

`plan_translation` does the CPU work (language detection, chunking); for big inputs the pane runs
it off the GUI thread. A `TranslationPlan` then hands out the prompt of each chunk, takes its
answer back (cleaned of chatter), and reassembles the output with the source's structure. The
plan survives a Stop: `next_index()` is the first chunk still untranslated, which is how Resume
continues where it stopped.

Token counting: the engine offers no tokenizer to the GUI yet, so chunks are measured with
`chunk_budget.estimate_tokens`, an estimate that errs high for the English-centred byte-level BPE
vocabularies of small local models (SmolLM2 spends ~2 tokens per Chinese or Japanese character,
~1 per Arabic or Cyrillic letter). Erring high only makes chunks smaller; erring low could
overflow the context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lmdesk.core.text.chunk_budget import DEFAULT_MAX_CHUNK_TOKENS, ChunkBudget, CountTokens, estimate_tokens, plan_budget
from lmdesk.core.text.chunking import Chunk, previous_tail, reassemble, split_for_translation
from lmdesk.core.text.languages import AUTO, detect_language
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams
from lmdesk.core.text.reply_clean import TRANSLATE, clean_reply
from lmdesk.core.translate.glossary import GlossaryEntry
from lmdesk.core.translate.prompts import translate_messages

__all__ = [
    "TranslateOptions", "TranslationPlan", "paragraphs",
    "plan_translation",
]

_TEMPLATE_TOKENS_PER_MESSAGE = 8  # role markers and separators of a chat template (ChatML: ~5)
_CONTEXT_CHARS = 200  # the source tail shown before a chunk split mid-paragraph


@dataclass(frozen=True)
class TranslateOptions:
    """What to translate into, and how (the pane's pickers and glossary, or the CLI's flags)."""

    target: str
    source: str = AUTO
    glossary: tuple[GlossaryEntry, ...] = ()
    max_chunk_tokens: int = DEFAULT_MAX_CHUNK_TOKENS
    temperature: float = 0.2  # translation wants fidelity, not variety
    seed: int | None = None
    max_tokens_cap: int | None = None  # an upper limit on each chunk's answer (the CLI's --max-tokens)


@dataclass
class TranslationPlan:
    """The chunks of one source text and the translations received so far."""

    text: str
    options: TranslateOptions
    source: str  # the source language used in prompts: as chosen, or detected; AUTO if unknown
    detected: str | None  # what detection found when the source was AUTO
    chunks: list[Chunk]
    budget: ChunkBudget
    translations: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.translations:
            self.translations = [None] * len(self.chunks)

    @property
    def total(self) -> int:
        """Number of chunks that go to the model."""
        return sum(1 for c in self.chunks if c.translate)

    @property
    def done(self) -> int:
        """Number of those already translated."""
        return sum(1 for c in self.chunks if c.translate and self.translations[c.index] is not None)

    @property
    def finished(self) -> bool:
        """True when every chunk that needs the model has its translation."""
        return self.next_index() is None

    def next_index(self) -> int | None:
        """The first chunk still to translate (where Resume continues), or None when done."""
        for c in self.chunks:
            if c.translate and self.translations[c.index] is None:
                return c.index
        return None

    def ordinal(self, index: int) -> int:
        """1-based position of chunk `index` among the chunks that go to the model."""
        return sum(1 for c in self.chunks[: index + 1] if c.translate)

    def messages(self, index: int) -> list[ChatMessage]:
        """The prompt for chunk `index` (with the source tail before it as context)."""
        o = self.options
        return translate_messages(
            self.chunks[index].text, o.target, self.source, glossary=o.glossary,
            context=previous_tail(self.chunks, index, _CONTEXT_CHARS),
        )

    def params(self, index: int) -> GenerationParams:
        """Sampling for chunk `index`; max_tokens leaves room for the answer in the context."""
        limit = self.budget.max_new_tokens(self.chunks[index].tokens)
        if self.options.max_tokens_cap:
            limit = min(limit, self.options.max_tokens_cap)
        return GenerationParams(max_tokens=limit, temperature=self.options.temperature, seed=self.options.seed)

    def accept(self, index: int, reply: str) -> None:
        """Record the model's answer for chunk `index`, cleaned of chatter."""
        self.translations[index] = clean_reply(reply, TRANSLATE)

    def output(self, *, partial: bool = True) -> str:
        """The translation so far with the source's structure; stops at the first gap when partial."""
        return reassemble(self.chunks, self.translations, partial=partial)


def prompt_overhead(options: TranslateOptions, source: str, count: CountTokens) -> int:
    """An upper bound on the prompt tokens of a chunk, beyond the chunk itself."""
    msgs = translate_messages("", options.target, source, glossary=options.glossary,
                              context="x" * _CONTEXT_CHARS, filter_glossary=False)
    return sum(count(m.content) + _TEMPLATE_TOKENS_PER_MESSAGE for m in msgs) + _TEMPLATE_TOKENS_PER_MESSAGE


def plan_translation(
    text: str,
    n_ctx: int,
    options: TranslateOptions,
    count_tokens: CountTokens = estimate_tokens,
) -> TranslationPlan:
    """Detect the source language if needed and split `text` into chunks that fit `n_ctx`.

    CPU work proportional to the text (detection samples 2,000 characters): run it off the GUI
    thread for big inputs. Raises ContextOverflowError when the context is too small to translate.
    """
    detected = detect_language(text) if options.source == AUTO else None
    source = options.source if options.source != AUTO else (detected or AUTO)
    overhead = prompt_overhead(options, source, count_tokens)
    budget = plan_budget(n_ctx, overhead, max_chunk_tokens=options.max_chunk_tokens)
    chunks = split_for_translation(text, budget.chunk_tokens, count_tokens)
    return TranslationPlan(text, options, source, detected, chunks, budget)


def paragraphs(text: str) -> list[str]:
    """Non-blank paragraphs of `text` (blank lines separate them) — for structure checks."""
    return [p for p in re.split(r"\n[^\S\n]*\n\s*", text.strip()) if p.strip()]

