"""Remove the chatter models wrap around a Write or Translate result.

`clean_reply` is conservative: it removes only text that is clearly *about* the result, never
part of it. What it removes, in this order, repeating while something changes:

1. our own ``<text>`` / ``</text>`` delimiters echoed back;
2. a leading preamble — "Sure! Here is the rewritten text:", "Here's the translation:",
   "Certainly." on its own line, a bare label line such as "Translation:" or "Corrected text:",
   "以下是翻译：" — only when something follows it;
3. a trailing line of chatter — "Let me know if you'd like any changes", "I hope this helps!",
   "Note: I kept the names…", "The text has been edited for grammar." — only when it talks about
   the edit or translation (for write actions, also plain pleasantries such as "let me know",
   "hope this helps") and text remains before it;
4. one pair of quotes or one ``` fence wrapping the whole reply.

Guards: nothing is removed that the source text itself contains at the same place (a letter that
ends with "Let me know if…" keeps it; a fenced source keeps its fence), and a reply that would
become empty is returned as it came (stripped).
"""

from __future__ import annotations

import re

TRANSLATE = "translate"  # the task name clean_reply takes for a translation

# Words that show a line talks about the result. A translation's source is in another language,
# so the "is it in the source?" guard can't help there: its chatter must name the translation.
_META_WRITE = r"(?:translat|rewrit|revis|rephras|chang|adjust|modif|version|edit|tweak|proofread|correct|summar|shorten|expand|bullet|continu|text|passage|paragraph|tone|formal|casual)"
_META_TRANSLATE = r"(?:translat|original text|literal)"
_LEAD_IN = r"(?:(?:sure|certainly|of course|okay|ok|absolutely|great|alright|no problem)\b[!,.]*\s*)?"
_INTRO = (
    r"(?:here(?:'s|’s| is| are)|below is|below are|the following is|this is"
    r"|i(?:'ve| have) (?:rewritten|translated|corrected|revised|edited|made|summari[sz]ed|shortened|expanded))"
)


def _preamble_re(meta: str) -> re.Pattern:
    """'Sure! Here is the <meta…>:' at the start, with or without content on the same line."""
    return re.compile(_LEAD_IN + _INTRO + r"\b[^:\n]{0,100}?" + meta + r"[^:\n]{0,60}:[ \t]*\n?", re.IGNORECASE)


def _label_re(labels: str) -> re.Pattern:
    """A bare label such as 'Translation:' (optionally bold, optionally '(French)')."""
    return re.compile(
        r"(?:\*\*)?(?:" + labels + r")(?:\s*\([^)\n]{0,40}\))?\s*:(?:\*\*)?[ \t]*\n?", re.IGNORECASE
    )


_PREAMBLE = {"write": _preamble_re(_META_WRITE), TRANSLATE: _preamble_re(_META_TRANSLATE)}
_LABEL = {
    "write": _label_re(
        r"rewritten text|rewrite|revised text|revised version|corrected text|corrected version"
        r"|proofread text|shortened text|shorter version|expanded text|expanded version|formal version"
        r"|casual version|summary|continuation|bullet points|result|output"
    ),
    TRANSLATE: _label_re(r"translation|translated text"),
}
_LONE_OK_RE = re.compile(
    r"(?:sure|certainly|of course|okay|absolutely|no problem|happy to help)[!.]*[ \t]*\n", re.IGNORECASE
)
_CJK_PREAMBLE_RE = re.compile(
    r"(?:好的[，,。!！]?\s*)?(?:以下是|下面是|这是|這是)[^：:\n]{0,20}"
    r"(?:翻译|翻譯|译文|譯文|改写|改寫|修改|润色|潤色|总结|總結|摘要|文本|版本)[^：:\n]{0,10}[：:][ \t]*\n?"
)
_EDITED = r"(?:edited|revised|rewritten|rewrote|rephrased|proofread|shortened|expanded|summari[sz]ed|polished|improved|adjusted|modified)"
_TRAILER_RE = re.compile(
    r"(?:\(?\s*)(?:let me know\b|please let me know\b|i hope (?:this|that|these)\b|hope (?:this|that) helps"
    r"|feel free to\b|if you (?:need|want|would like|'d like|have any)\b|is there anything else\b"
    r"|would you like me to\b|note:|notes:|\*\*note\*\*|\(note\b"
    r"|i(?:'ve|’ve| have)? (?:kept|changed|made|corrected|translated|" + _EDITED + r")\b"
    r"|(?:the|this|your) (?:(?:above|original|revised|edited|corrected|rewritten|new|updated) )?"
    r"(?:text|passage|paragraph|sentence|version)s? (?:has|have) been (?:" + _EDITED + r"|corrected|translated|changed)\b)",
    re.IGNORECASE,
)
# Plain pleasantries: for a write action with a source they go without naming the edit. Any other
# trailing line ("I made…", "I hope that…", "Note: …") must name the edit, or it may be content.
_PLEASANTRY_RE = re.compile(
    r"\(?\s*(?:(?:please )?let me know\b|(?:i )?hope (?:this|that|these) helps?\b|feel free to\b"
    r"|is there anything else\b|would you like me to\b)",
    re.IGNORECASE,
)
_FENCE_RE = re.compile(r"```[\w+.#-]*[ \t]*\n(.*?)\n?```", re.DOTALL)
_QUOTE_PAIRS = {'"': '"', "“": "”", "'": "'", "«": "»", "„": "“", "「": "」", "『": "』"}


def _words(s: str) -> str:
    """Lower-cased words joined by single spaces, for 'is this in the source?' checks."""
    return " ".join(re.findall(r"\w+", s.casefold()))


def _in_source(fragment: str, source: str | None) -> bool:
    """True when the source contains the fragment's first three words (so it is content)."""
    if source is None:
        return False
    head = " ".join(_words(fragment).split()[:3])
    return bool(head) and f" {head} " in f" {_words(source)} "


def _strip_preamble(text: str, kind: str, source: str | None) -> str:
    """Drop one leading preamble or label when content follows it."""
    for pattern in (_PREAMBLE[kind], _CJK_PREAMBLE_RE, _LABEL[kind], _LONE_OK_RE):
        m = pattern.match(text)
        if m and text[m.end():].strip() and not _in_source(m.group(0), source):
            return text[m.end():].lstrip()
    return text


def _strip_trailer(text: str, kind: str, source: str | None) -> str:
    """Drop a last line (or last paragraph) of chatter when text remains before it."""
    body, sep, last = text.rstrip().rpartition("\n")
    if not sep or not body.strip():
        return text
    line = last.strip()
    if len(line) > 240 or not _TRAILER_RE.match(line) or _in_source(line, source):
        return text
    # A translation has no source in the same language to compare with, so a trailing line
    # must talk about the translation itself; a write action may drop plain pleasantries too.
    if kind == TRANSLATE and not re.search(_META_TRANSLATE, line, re.IGNORECASE):
        return text
    if kind != TRANSLATE and (source is None or not _PLEASANTRY_RE.match(line)) and not re.search(
        _META_WRITE, line, re.IGNORECASE
    ):
        return text
    return body.rstrip()


def _unwrap(text: str, source: str | None) -> str:
    """Remove one fence or pair of quotes around the whole reply (not if the source has it)."""
    src = (source or "").strip()
    m = _FENCE_RE.fullmatch(text)
    if m and not src.startswith("```") and m.group(1).strip():
        return m.group(1).strip("\n")
    if len(text) >= 2 and text[0] in _QUOTE_PAIRS and text[-1] == _QUOTE_PAIRS[text[0]]:
        inner = text[1:-1]
        if inner.strip() and text[0] not in inner and text[-1] not in inner and not src.startswith(text[0]):
            return inner.strip()
    return text


def clean_reply(text: str, action: str, source: str | None = None) -> str:
    """The result without chatter; `action` is a Write action (a WriteAction is a str) or TRANSLATE,
    and `source` is the text the action worked on (for the guards)."""
    out = text.strip()
    if not out:
        return out
    kind = TRANSLATE if action == TRANSLATE else "write"
    for _ in range(4):
        before = out
        out = re.sub(r"^\s*<text>\s*\n?|\n?\s*</text>\s*$", "", out).strip() or out
        out = _strip_preamble(out, kind, source)
        out = _strip_trailer(out, kind, source)
        out = _unwrap(out, source)
        if out == before:
            break
    return out or text.strip()
