"""The token budget of one translation chunk, derived from the model's context, and a cheap
token estimator for tests and for when no tokenizer is at hand."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from lmdesk.core.errors import ContextOverflowError

CountTokens = Callable[[str], int]

MIN_CHUNK_TOKENS = 16  # below this, chunks are too small to translate sensibly
DEFAULT_EXPANSION = 2.0  # answer tokens per source token allowed for (see plan_budget)
DEFAULT_MAX_CHUNK_TOKENS = 512  # small local models translate short chunks better; progress is finer


@dataclass(frozen=True)
class ChunkBudget:
    """How many source tokens one chunk may hold, and how many tokens its answer may use."""

    chunk_tokens: int
    n_ctx: int
    prompt_overhead: int
    expansion: float
    margin: int

    def max_new_tokens(self, chunk_tokens: int) -> int:
        """Generation limit for a chunk of `chunk_tokens` tokens: expected length plus slack,
        never more than what is left of the context."""
        room = self.n_ctx - self.prompt_overhead - self.margin - chunk_tokens
        return max(1, min(room, math.ceil(self.expansion * chunk_tokens) + 32))


def plan_budget(
    n_ctx: int,
    prompt_overhead: int,
    *,
    expansion: float = DEFAULT_EXPANSION,
    max_chunk_tokens: int = DEFAULT_MAX_CHUNK_TOKENS,
) -> ChunkBudget:
    """Per-chunk budget so that prompt + chunk + answer fits the context.

    Rule: ``overhead + x + expansion·x + margin ≤ n_ctx``, so
    ``x = (n_ctx − overhead − margin) / (1 + expansion)``, capped at `max_chunk_tokens`.
    `prompt_overhead` is the token count of the rendered prompt with empty text (template,
    instruction, glossary, context tail). `expansion` defaults to 2: a translation can take
    1.5–2× the source's tokens (e.g. English into Hindi or Thai with a Latin-centred
    tokenizer); the margin (n_ctx/32, at least 16) absorbs estimator error and special tokens.
    """
    margin = max(16, n_ctx // 32)
    x = int((n_ctx - prompt_overhead - margin) / (1.0 + expansion))
    x = min(x, max_chunk_tokens)
    if x < MIN_CHUNK_TOKENS:
        raise ContextOverflowError(
            f"The model's context ({n_ctx} tokens) is too small for translation with this prompt",
            fix="load the model with a larger context (n_ctx) or shorten the glossary",
        )
    return ChunkBudget(x, n_ctx, prompt_overhead, expansion, margin)


def estimate_tokens(text: str) -> int:
    """A tokenizer stand-in that errs high, for budgets where the real tokenizer is out of reach:
    ASCII ~4 chars/token, CJK/kana/Hangul 2 per character (SmolLM2-style byte-level BPE spends
    ~2), other BMP characters 1, astral (emoji, rare CJK) 3. Erring high only makes chunks
    smaller; erring low could overflow the context."""
    ascii_n = len(_ASCII_RE.findall(text))
    wide = len(_WIDE_RE.findall(text))
    astral = sum(1 for ch in text if ord(ch) > 0xFFFF)
    return math.ceil(ascii_n / 4) + 2 * wide + (len(text) - ascii_n - wide - astral) + 3 * astral


_ASCII_RE = re.compile(r"[\x00-\x7f]")
_WIDE_RE = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
