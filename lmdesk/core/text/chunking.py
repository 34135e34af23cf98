"""Split text of any length into chunks for translation, and put the translations back together.

Structure is owned here, never by the model:

* A **paragraph** is a run of non-blank lines; blank lines (any whitespace) separate paragraphs.
  A fenced code block (``` or ~~~) is one verbatim paragraph even if it holds blank lines.
* Inside a paragraph, every line that starts with a Markdown marker (``# ``, ``- ``, ``* ``,
  ``+ ``, ``1. ``, ``1) ``, ``> ``, ``- [ ] ``) starts an **item**; lines without a marker
  continue the item above (soft-wrapped text). A heading is always a single line.
* The marker and leading whitespace go to ``Chunk.prefix``; the trailing whitespace, newlines and
  blank lines go to ``Chunk.separator_after``. Only ``Chunk.text`` is sent to the model, so the
  model never sees (and cannot drop) a marker or a blank line: reassembly puts them back verbatim.
* An item too long for the budget is split into sentences (Latin ``.!?…``, CJK ``。！？``,
  ``।؟۔``, line breaks), packed greedily into chunks; a sentence still too long is split at
  clause marks (``,，、;；:：``), then at spaces, then hard at a character offset found by
  exponential + binary search on ``count_tokens`` (1 MB of Chinese with no punctuation works).
  Every emitted chunk has been measured with ``count_tokens`` and fits ``budget``.
* Items with nothing to translate (no letters: ``---``, numbers, emoji) and code blocks are
  chunks with ``translate=False`` and are copied as is.

Cost is linear-ish: each sentence is measured once; hard splits measure O(log n) slices of
about one chunk's length.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace

from lmdesk.core.text.chunk_budget import ChunkBudget, CountTokens, estimate_tokens, plan_budget
from lmdesk.core.errors import ContextOverflowError

__all__ = [
    "Chunk", "ChunkBudget", "CountTokens", "estimate_tokens", "plan_budget", "split_for_translation",
    "reassemble", "fit_translation", "paragraph_count", "previous_tail",
]


@dataclass(frozen=True)
class Chunk:
    """One piece of the source: ``prefix + text + separator_after`` re-creates it exactly."""

    index: int
    text: str  # sent to the model when `translate`; copied verbatim otherwise
    prefix: str  # leading whitespace and Markdown marker (and, for chunk 0, leading blank lines)
    separator_after: str  # whitespace / newlines / blank lines up to the next chunk
    paragraph_index: int  # 0-based; chunks of one paragraph share it
    is_paragraph_start: bool
    translate: bool
    tokens: int = 0  # count_tokens(text) for translated chunks

    @property
    def source(self) -> str:
        """The exact slice of the input this chunk covers."""
        return self.prefix + self.text + self.separator_after


# --- splitting ---------------------------------------------------------------------------------

# A ``` fence's info string holds no backtick (so "```code```" on one line is not a fence).
_FENCE_RE = re.compile(r"[ \t]{0,3}(`{3,}(?=[^`\n]*$)|~{3,})")
_MARKER_RE = re.compile(
    r"[ \t]*(?:"
    r"(?P<heading>\#{1,6})[ \t]+"
    r"|(?:>[ \t]?)+(?:(?:[-*+]|\d{1,9}[.)])[ \t]+)?"
    r"|(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?"
    r")"
)
_RULE_RE = re.compile(r"[-=*_|:+ \t]{3,}")  # --- *** === |---|:--| (rules, underlines, tables)
# A boundary ends a piece; group `ws` (possibly empty) is the whitespace that follows it.
_SENTENCE_RE = re.compile(
    r"(?:[.!?…]+[\"'”’»)\]]*(?=\s)|[。！？｡︒]+[」』”’）)\]]*|[!?]+(?=[^\x00-\x7f])|[।॥؟۔]+|(?<=\S)(?=[^\S\n]*\n))"
    r"(?P<ws>\s*)"
)
_CLAUSE_RE = re.compile(r"(?:[,;:](?=\s)|[，、；：])(?P<ws>\s*)")
_WORD_RE = re.compile(r"(?<=\S)(?P<ws>\s+)")


def _lines(text: str) -> list[str]:
    """Lines with their '\\n' kept; only '\\n' ends a line (\\r stays, so CRLF round-trips)."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _blocks(text: str) -> tuple[str, list[tuple[str, bool, str]]]:
    """Split into leading blank lines and (block, is_code, trailing blank lines) triples."""
    lines = _lines(text)
    blocks: list[list] = []  # [text, is_code, trailing]
    lead = ""
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if not line.strip():
            if blocks:
                blocks[-1][2] += line
            else:
                lead += line
            i += 1
            continue
        fence = _FENCE_RE.match(line)
        if fence:
            mark = fence.group(1)
            closing = re.compile(r"[ \t]{0,3}" + re.escape(mark[0]) + "{%d,}\\s*$" % len(mark))
            j = i + 1
            # A fence closes at a line of the same character at least as long; else at the end.
            while j < n and not closing.match(lines[j]):
                j += 1
            j = min(j + 1, n)
            blocks.append(["".join(lines[i:j]), True, ""])
            i = j
            continue
        j = i + 1
        while j < n and lines[j].strip() and not _FENCE_RE.match(lines[j]):
            j += 1
        blocks.append(["".join(lines[i:j]), False, ""])
        i = j
    return lead, [(b[0], b[1], b[2]) for b in blocks]


def _items(paragraph: str) -> list[str]:
    """Split a paragraph into items: a new one at each marker line, and around headings and rules."""
    items: list[str] = []
    single = False  # the previous line was a heading or a rule: nothing continues it
    for line in _lines(paragraph):
        m = _MARKER_RE.match(line)
        has_marker = bool(m and line[m.end():].strip())
        rule = bool(_RULE_RE.fullmatch(line.strip()))
        if not items or has_marker or single or rule:
            items.append(line)
        else:
            items[-1] += line
        single = rule or bool(has_marker and m.group("heading"))
    return items


def _split_at(text: str, pattern: re.Pattern) -> list[tuple[str, str]]:
    """Pieces (text, whitespace after) at the boundaries `pattern` finds; they re-join exactly."""
    pieces: list[tuple[str, str]] = []
    start = 0
    for m in pattern.finditer(text):
        end = m.start("ws")
        if end <= start or m.end() >= len(text):
            continue
        pieces.append((text[start:end], m.group("ws")))
        start = m.end()
    pieces.append((text[start:], ""))
    return pieces


_LEVELS = (_SENTENCE_RE, _CLAUSE_RE, _WORD_RE)


def _cut_ok(text: str, i: int) -> bool:
    """False inside a grapheme: before a combining mark, variation selector or after a ZWJ."""
    ch, prev = text[i], text[i - 1]
    if prev == "\u200d" or ch == "\u200d" or "\ufe00" <= ch <= "\ufe0f" or "\U0001f3fb" <= ch <= "\U0001f3ff":
        return False
    return not unicodedata.combining(ch)


def _hard_split(text: str, budget: int, count: CountTokens) -> list[tuple[str, int]]:
    """Split text with no usable boundary into measured pieces that each fit `budget`."""
    out: list[tuple[str, int]] = []
    start, n = 0, len(text)
    slack = budget // 50
    step = max(1, budget * 2)  # first guess in characters; later, the previous piece's length
    while start < n:
        # Exponential search from the guess: `lo` is the longest end measured to fit,
        # `hi` the shortest measured not to (or n).
        lo, lo_tokens, hi = start, 0, min(n, start + step)
        while True:
            t = count(text[start:hi])
            if t > budget:
                break
            lo, lo_tokens = hi, t
            if hi == n or t >= budget - slack:  # full enough: skip the search (usual on uniform text)
                hi = lo + 1
                break
            hi = min(n, start + 2 * (hi - start))
        while hi - lo > 1:  # binary search for the longest end that fits
            mid = (lo + hi) // 2
            t = count(text[start:mid])
            if t <= budget:
                lo, lo_tokens = mid, t
            else:
                hi = mid
        if lo == start:
            raise ContextOverflowError(
                "A single character does not fit the translation budget",
                fix="load the model with a larger context",
            )
        end = lo
        while end > start + 1 and end < n and not _cut_ok(text, end):
            end -= 1  # don't cut an emoji sequence or a letter from its accent
        if end != lo and (t := count(text[start:end])) <= budget:
            lo, lo_tokens = end, t
        out.append((text[start:lo], lo_tokens))
        step = lo - start
        start = lo
    return out


def _pack(body: str, budget: int, count: CountTokens, level: int = 0) -> list[tuple[str, str, int]]:
    """Split `body` into (text, whitespace after, tokens) groups that each fit `budget`."""
    if level >= len(_LEVELS):
        return [(t, "", n) for t, n in _hard_split(body, budget, count)]
    out: list[tuple[str, str, int]] = []
    group: list[tuple[str, str]] = []
    group_tokens = 0

    def flush() -> None:
        nonlocal group, group_tokens
        if not group:
            return
        text = "".join(t + w for t, w in group[:-1]) + group[-1][0]
        tokens = count(text)
        if tokens <= budget:
            out.append((text, group[-1][1], tokens))
        else:  # the tokenizer is not additive here: fall back to one piece per chunk
            for t, w in group:
                out.extend(_pack_piece(t, w, budget, count, level))
        group, group_tokens = [], 0

    pieces = _split_at(body, _LEVELS[level])
    if len(pieces) == 1:  # no boundary of this kind: go finer without measuring the body again
        return _pack(body, budget, count, level + 1)
    for text, ws in pieces:
        n = count(text + ws)
        if n > budget:
            flush()
            out.extend(_pack_piece(text, ws, budget, count, level))
            continue
        if group and group_tokens + n > budget:
            flush()
        group.append((text, ws))
        group_tokens += n
    flush()
    return out


def _pack_piece(text: str, ws: str, budget: int, count: CountTokens, level: int) -> list[tuple[str, str, int]]:
    """One piece alone: as is when it fits, else split at the next finer level."""
    tokens = count(text)
    if tokens <= budget:
        return [(text, ws, tokens)]
    parts = _pack(text, budget, count, level + 1)
    last_text, _, last_tokens = parts[-1]
    parts[-1] = (last_text, ws, last_tokens)
    return parts


def split_for_translation(text: str, budget: int, count_tokens: CountTokens = estimate_tokens) -> list[Chunk]:
    """Chunks covering `text` exactly, in order; every translated chunk fits `budget` tokens."""
    if budget < 1:
        raise ValueError("budget must be at least 1 token")
    chunks: list[Chunk] = []
    lead, blocks = _blocks(text)
    if not blocks:  # empty, or whitespace only
        return [Chunk(0, text, "", "", 0, True, False)] if text else []

    def add(prefix: str, body: str, sep: str, para: int, start: bool, translate: bool, tokens: int = 0) -> None:
        if not chunks:
            prefix = lead + prefix  # leading blank lines belong to nothing: keep them verbatim
        chunks.append(Chunk(len(chunks), body, prefix, sep, para, start, translate, tokens))

    for para, (block, is_code, trailing) in enumerate(blocks):
        if is_code:
            add("", block, trailing, para, True, False)
            continue
        first = True
        for item in _items(block):
            m = _MARKER_RE.match(item)
            cut = m.end() if m else 0
            rest = item[cut:]
            body = rest.strip()
            cut += len(rest) - len(rest.lstrip())
            prefix, sep = item[:cut], item[cut + len(body):]
            if not any(ch.isalpha() for ch in body):
                add(prefix, body, sep, para, first, False)
            elif (tokens := count_tokens(body)) <= budget:
                add(prefix, body, sep, para, first, True, tokens)
            else:
                for k, (piece, ws, n) in enumerate(_pack(body, budget, count_tokens)):
                    add(prefix if k == 0 else "", piece, ws, para, first and k == 0, True, n)
                chunks[-1] = _with_sep(chunks[-1], chunks[-1].separator_after + sep)
            first = False
        chunks[-1] = _with_sep(chunks[-1], chunks[-1].separator_after + trailing)
    return chunks


def _with_sep(chunk: Chunk, sep: str) -> Chunk:
    """A copy of `chunk` with another separator."""
    return replace(chunk, separator_after=sep)


def paragraph_count(chunks: Sequence[Chunk]) -> int:
    """Number of paragraphs the chunks cover."""
    return len({c.paragraph_index for c in chunks})


def previous_tail(chunks: Sequence[Chunk], i: int, max_chars: int = 200) -> str:
    """The end of the source text before chunk `i` in the same paragraph (context for a
    sentence split mid-paragraph); '' at a paragraph start."""
    c = chunks[i]
    if c.is_paragraph_start:
        return ""
    parts: list[str] = []
    size = 0
    for prev in reversed(chunks[: i]):
        if prev.paragraph_index != c.paragraph_index or size >= max_chars:
            break
        parts.append(prev.text + prev.separator_after)
        size += len(parts[-1])
    return "".join(reversed(parts))[-max_chars:].strip()


# --- reassembly --------------------------------------------------------------------------------

_BLANK_LINES_RE = re.compile(r"\n(?:[^\S\n]*\n)+")
_NEWLINE_RUN_RE = re.compile(r"[^\S\n]*\n\s*")
_NOSPACE_SCRIPT_RE = re.compile(
    r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    r"\uf900-\ufaff\uff00-\uffef\U00020000-\U0002ffff]"
)


def fit_translation(chunk: Chunk, translation: str) -> str:
    """Normalise a model's translation of `chunk` so it cannot break the document's structure.

    Strips surrounding whitespace (the chunk's prefix and separator own it); collapses blank
    lines (a chunk never spans paragraphs, so a blank line would add one); turns line breaks into
    spaces when the source had none (a heading or list item stays one line); drops a Markdown
    marker the model repeated; and keeps the source when the answer is empty.
    """
    out = translation.strip()
    marker = chunk.prefix.strip()
    if marker and out.startswith(marker) and not chunk.text.startswith(marker):
        out = out[len(marker):].lstrip()
    out = _BLANK_LINES_RE.sub("\n", out)
    if "\n" not in chunk.text:
        out = _NEWLINE_RUN_RE.sub(" ", out)
    return out or chunk.text


def _needs_space(prev: Chunk, prev_out: str, cur: Chunk, cur_out: str) -> bool:
    """A space between two pieces of one sentence-split item whose source used none (CJK, Thai)
    but whose translation does (the target language separates words with spaces)."""
    if prev.separator_after or not prev.translate or not cur.translate or cur.is_paragraph_start:
        return False
    if not (prev.text and cur.text and prev_out and cur_out):
        return False
    src_nospace = _NOSPACE_SCRIPT_RE.match(prev.text[-1]) or _NOSPACE_SCRIPT_RE.match(cur.text[0])
    out_nospace = _NOSPACE_SCRIPT_RE.match(prev_out[-1]) or _NOSPACE_SCRIPT_RE.match(cur_out[0])
    return bool(src_nospace and not out_nospace and not prev_out[-1].isspace())


def reassemble(chunks: Sequence[Chunk], translations: Sequence[str | None], *, partial: bool = False) -> str:
    """Join translations (one per chunk, by index) with the source's markers and separators.

    A chunk with ``translate=False`` is copied as is. A missing translation (None, or the list
    is shorter) is filled with the source text — or, with `partial=True`, ends the output there
    (what the Translate pane shows while chunks stream in).
    """
    parts: list[str] = []
    prev: Chunk | None = None
    prev_out = ""
    for c in chunks:
        if not c.translate:
            out = c.text
        else:
            t = translations[c.index] if c.index < len(translations) else None
            if t is None:
                if partial:
                    break
                out = c.text
            else:
                out = fit_translation(c, t)
        if prev is not None and _needs_space(prev, prev_out, c, out):
            parts.append(" ")
        parts.append(c.prefix + out + c.separator_after)
        prev, prev_out = c, out
    return "".join(parts)
