"""Word-level diff between a text and its rewrite, with accept/reject per change.

Texts are cut into tokens that re-join exactly: words (letters, digits, apostrophes, combining
marks), runs of whitespace, single punctuation marks — and single characters for scripts written
without spaces (Chinese, Japanese, Thai…), where a "word" would otherwise be a whole sentence.
difflib.SequenceMatcher (autojunk off: with it, frequent tokens such as " " are ignored on long
texts and the diff degrades) aligns the tokens. A whitespace-only equal run between two changes is
folded into one change, so "the cat" → "a dog" is one replacement, not two.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

HunkKind = Literal["equal", "insert", "delete", "replace"]

_NOSPACE = r"\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\U00020000-\U0002ffff"
_TOKEN_RE = re.compile(
    rf"[{_NOSPACE}][\u0300-\u036f\u0e31\u0e34-\u0e3a\u0e47-\u0e4e\ufe00-\ufe0f]*"  # one no-space-script character
    rf"|(?:(?![{_NOSPACE}])[\w\u0300-\u036f\u0900-\u0dff\u200c\u200d])+(?:['’](?:(?![{_NOSPACE}])\w)+)*"  # a word
    r"|\s+"  # whitespace
    r"|.",  # anything else, one character at a time
    re.DOTALL,
)


@dataclass(frozen=True)
class Hunk:
    """One run of the diff: old_text in the original becomes new_text in the rewrite."""

    kind: HunkKind
    old_text: str
    new_text: str
    old_span: tuple[int, int]  # character offsets in the original
    new_span: tuple[int, int]  # character offsets in the rewrite

    @property
    def is_change(self) -> bool:
        """True for insert, delete and replace hunks (the ones a user accepts or rejects)."""
        return self.kind != "equal"


def tokenize(text: str) -> list[str]:
    """Diff tokens of `text`; ''.join(tokenize(t)) == t."""
    return _TOKEN_RE.findall(text)


def diff_words(old: str, new: str) -> list[Hunk]:
    """Hunks turning `old` into `new`, in order; equal hunks included."""
    a, b = tokenize(old), tokenize(new)
    a_pos, b_pos = _offsets(a), _offsets(b)
    raw: list[list] = []  # [kind, i1, i2, j1, j2]
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        raw.append([tag, i1, i2, j1, j2])
    raw = _fold_whitespace(raw, a)
    hunks = []
    for tag, i1, i2, j1, j2 in raw:
        os, oe, ns, ne = a_pos[i1], a_pos[i2], b_pos[j1], b_pos[j2]
        hunks.append(Hunk(tag, old[os:oe], new[ns:ne], (os, oe), (ns, ne)))
    return hunks


def _offsets(tokens: Sequence[str]) -> list[int]:
    """Character offset of each token, plus the total length at the end."""
    pos = [0]
    for t in tokens:
        pos.append(pos[-1] + len(t))
    return pos


def _fold_whitespace(ops: list[list], a: Sequence[str]) -> list[list]:
    """Merge change, whitespace-only equal, change into one replace hunk."""
    out: list[list] = []
    for op in ops:
        if (
            op[0] != "equal" and len(out) >= 2 and out[-1][0] == "equal" and out[-2][0] != "equal"
            and all(t.isspace() for t in a[out[-1][1]:out[-1][2]])
        ):
            out.pop()
            prev = out[-1]
            out[-1] = ["replace", prev[1], op[2], prev[3], op[4]]
            continue
        out.append(op)
    for op in out:  # a merged hunk may have an empty side: name it for what it does
        if op[0] == "replace" and op[1] == op[2]:
            op[0] = "insert"
        elif op[0] == "replace" and op[3] == op[4]:
            op[0] = "delete"
    return out


def change_indices(hunks: Sequence[Hunk]) -> list[int]:
    """Indices of the hunks a user can accept or reject."""
    return [i for i, h in enumerate(hunks) if h.is_change]


def apply(original: str, hunks: Sequence[Hunk], accepted: Iterable[int]) -> str:
    """The original with the accepted changes (hunk indices) applied and the others rejected.

    All change indices accepted gives the new text; none gives `original` back.
    """
    if "".join(h.old_text for h in hunks) != original:
        raise ValueError("the hunks were computed for a different text")
    keep = set(accepted)
    return "".join(h.new_text if (h.is_change and i in keep) else h.old_text for i, h in enumerate(hunks))


def diff_stats(hunks: Sequence[Hunk]) -> tuple[int, int]:
    """(words inserted, words deleted) — for a 'n changes' summary line."""
    ins = sum(len([t for t in tokenize(h.new_text) if not t.isspace()]) for h in hunks if h.is_change)
    dels = sum(len([t for t in tokenize(h.old_text) if not t.isspace()]) for h in hunks if h.is_change)
    return ins, dels
