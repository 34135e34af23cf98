"""Markdown → the HTML subset Qt's QTextBrowser understands (HTML 4 attributes, inline CSS).

markdown-it-py ("commonmark" + tables + strikethrough, raw HTML and linkify off) with custom
rules: code blocks highlighted by Pygments with inline styles, each with a `copy:N` link (the raw
code is returned alongside); tables with borders and `align` attributes (Qt ignores CSS
text-align on cells); images never loaded, shown as a link text `[image: alt]`; only http(s) and
mailto links stay links. Qt-free: the view decides what a click does.

For streaming, `split_last_block` separates the text into a stable prefix (blocks that can no
longer change) and the last block, which is all that needs re-rendering as tokens arrive.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # markdown-it and Pygments are imported by the first render, not at start-up
    from markdown_it import MarkdownIt
    from pygments.formatters import HtmlFormatter

_SAFE_SCHEMES = {"http", "https", "mailto"}


@dataclass(frozen=True)
class Palette:
    """Colours of one theme (Qt ignores anything fancier than plain colour values)."""

    pygments_style: str
    code_bg: str
    code_fg: str
    inline_code_bg: str
    border: str
    muted: str
    link: str


LIGHT = Palette("default", "#f6f8fa", "#1f2328", "#eff1f3", "#afb8c1", "#6e7781", "#0969da")
DARK = Palette("github-dark", "#161b22", "#e6edf3", "#2d333b", "#3d444d", "#9198a1", "#4493f8")


@dataclass
class Rendered:
    """HTML for a QTextBrowser plus the raw text of each code block (index N ↔ link `copy:N`)."""

    html: str
    code_blocks: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=4)
def _formatter(style: str) -> HtmlFormatter:
    from pygments.formatters import HtmlFormatter

    # nowrap: we draw the box ourselves; noclasses: Qt has no stylesheet for classes.
    return HtmlFormatter(style=style, noclasses=True, nowrap=True)


@functools.lru_cache(maxsize=64)
def _lexer(lang: str):
    from pygments.lexers import TextLexer, get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        return get_lexer_by_name(lang) if lang else TextLexer()
    except ClassNotFound:
        return TextLexer()


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _safe_href(url: str) -> bool:
    try:
        return urlsplit(url).scheme.lower() in _SAFE_SCHEMES
    except ValueError:
        return False


def _code_block(self, tokens, idx, options, env) -> str:
    from pygments import highlight

    token = tokens[idx]
    code = token.content[:-1] if token.content.endswith("\n") else token.content
    lang = token.info.split()[0] if token.type == "fence" and token.info.strip() else ""
    pal: Palette = env["palette"]
    n = env["code_base"] + len(env["code_blocks"])
    env["code_blocks"].append(code)
    body = highlight(code, _lexer(lang.lower()), _formatter(pal.pygments_style)).rstrip("\n")
    # The header sits outside the box: a bordered table would draw a border around every cell.
    return (
        f'<table width="100%" cellspacing="0" cellpadding="0" style="margin-top: 4px;"><tr>'
        f'<td><font color="{pal.muted}" size="-1">{_esc(lang)}</font></td>'
        f'<td align="right"><a href="{_esc(env["copy_prefix"])}{n}" style="color: {pal.link};">Copy</a></td>'
        f'</tr></table>'
        f'<table width="100%" cellspacing="0" cellpadding="6" bgcolor="{pal.code_bg}"'
        f' style="border: 1px solid {pal.border}; border-style: solid; margin-bottom: 8px;">'
        f'<tr><td><pre style="margin: 0; color: {pal.code_fg};">{body}</pre></td></tr></table>\n'
    )


def _code_inline(self, tokens, idx, options, env) -> str:
    return f'<code style="background-color: {env["palette"].inline_code_bg};">{_esc(tokens[idx].content)}</code>'


def _link_open(self, tokens, idx, options, env) -> str:
    href = tokens[idx].attrGet("href") or ""
    ok = _safe_href(str(href))
    env["links"].append(ok)  # link_close needs to know whether an <a> was opened
    return f'<a href="{_esc(str(href))}" style="color: {env["palette"].link};">' if ok else ""


def _link_close(self, tokens, idx, options, env) -> str:
    return "</a>" if env["links"].pop() else ""


def _image(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env)
    label = _esc(f"[image: {alt}]" if alt else "[image]")
    src = str(token.attrGet("src") or "")
    # Never an <img>: the view would load it. A link opens only when the user clicks it.
    return f'<a href="{_esc(src)}" style="color: {env["palette"].link};">{label}</a>' if _safe_href(src) else label


def _table_open(self, tokens, idx, options, env) -> str:
    pal: Palette = env["palette"]
    return (f'<table border="1" cellspacing="0" cellpadding="4"'
            f' style="border-collapse: collapse; border-style: solid; border-color: {pal.border}; margin-bottom: 8px;">\n')


def _blockquote_open(self, tokens, idx, options, env) -> str:
    return f'<blockquote style="color: {env["palette"].muted};">\n'


def _cell_open(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    m = re.search(r"text-align:\s*(left|right|center)", str(token.attrGet("style") or ""))
    return f'<{token.tag} align="{m.group(1)}">' if m else f"<{token.tag}>"


@functools.lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    for name, rule in {
        "fence": _code_block, "code_block": _code_block, "code_inline": _code_inline,
        "link_open": _link_open, "link_close": _link_close, "image": _image,
        "table_open": _table_open, "th_open": _cell_open, "td_open": _cell_open,
        "blockquote_open": _blockquote_open,
    }.items():
        md.add_render_rule(name, rule)
    return md


def render_markdown(text: str, dark: bool = False, code_base: int = 0, copy_prefix: str = "copy:") -> Rendered:
    """Render markdown to QTextBrowser HTML; code block i gets the link `{copy_prefix}{code_base + i}`."""
    env = {"palette": DARK if dark else LIGHT, "code_blocks": [], "code_base": code_base,
           "copy_prefix": copy_prefix, "links": []}
    out = _parser().render(text, env)
    return Rendered(out, env["code_blocks"])


_FENCE = re.compile(r"^(?:[ \t]*>)*[ \t]*(`{3,}|~{3,})(.*)$")


def split_last_block(text: str) -> tuple[str, str]:
    """Split into (stable_prefix, last_block) with stable_prefix + last_block == text.

    A block boundary is the start of a non-blank line that follows a blank line outside a fenced
    code block; while a fence is open, everything from the block holding its opening line on is
    the last block. The prefix only grows as text is appended, so a view can render it once
    (block by block) and re-render just the last block per batch. It is for streaming: lists with
    blank lines between items or indented code split here render slightly differently, so
    render the whole message once when it is finished.
    """
    boundary = 0
    pos = 0
    prev_blank = False
    fence: tuple[str, int] | None = None
    for line in text.split("\n"):
        if fence is not None:
            m = _FENCE.match(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= fence[1] and not m.group(2).strip():
                fence = None
        elif not line.strip():
            prev_blank = True
        else:
            if prev_blank:
                boundary = pos
            prev_blank = False
            m = _FENCE.match(line)
            # A backtick fence's info string may not contain a backtick (CommonMark): then it is inline code.
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                fence = (m.group(1)[0], len(m.group(1)))
        pos += len(line) + 1
    return text[:boundary], text[boundary:]
