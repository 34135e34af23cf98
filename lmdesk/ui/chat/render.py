"""HTML for one message of the transcript: a header, the body (markdown for replies, plain text for
the user's own words), and a quiet footer with stats, status and action links.

Qt-free string building; the MessageView puts the pieces into its QTextBrowser. Action links are
`action:<verb>:<message id>` and code-block copy links `copy:<message id>:<n>`, so a rendered body
can be cached per message and reused in any document position.
"""

from __future__ import annotations

import html
import time
from collections import OrderedDict
from dataclasses import dataclass

from lmdesk.core.chat.conversation import Message
from lmdesk.core.render.markdown import Rendered, render_markdown
from lmdesk.core.stats import GenerationStats
from lmdesk.ui.theme import ViewColors

_STATUS_NOTES = {
    "stopped": ("warn", "stopped"),
    "interrupted": ("warn", "interrupted (the app closed while it was written)"),
    "error": ("error", "error"),
}


@dataclass(frozen=True)
class MessageContext:
    """What a message's footer needs beyond the message itself."""

    version: tuple[int, int] = (1, 1)  # (index, count) for the `< 2/3 >` switcher


def copy_prefix(message_id: int) -> str:
    """The link prefix of a message's code-block Copy links."""
    return f"copy:{message_id}:"


def stats_line(stats: GenerationStats) -> str:
    """'42 tokens · 95.1 tok/s · first token 0.08 s' (+ why it ended, when not a normal stop)."""
    parts = [f"{stats.generated_tokens} tokens"]
    if stats.tokens_per_second:
        parts.append(f"{stats.tokens_per_second:.1f} tok/s")
    if stats.time_to_first_token is not None:
        parts.append(f"first token {stats.time_to_first_token:.2f} s")
    if stats.stop_reason == "cancelled":
        parts.append("stopped")
    elif stats.stop_reason == "length":
        parts.append("max tokens reached")
    if stats.dropped_messages:
        parts.append(f"{stats.dropped_messages} old messages left out of context")
    return " · ".join(parts)


def stats_text(m: Message) -> str:
    """The quiet line under a reply: model · first token · tok/s · tokens."""
    parts = [m.model] if m.model else []
    s = m.stats or {}
    if s.get("time_to_first_token") is not None:
        parts.append(f"first token {s['time_to_first_token']:.2f} s")
    if s.get("tokens_per_second"):
        parts.append(f"{s['tokens_per_second']:.1f} tok/s")
    if s.get("generated_tokens"):
        parts.append(f"{s['generated_tokens']} tokens")
    if s.get("stop_reason") == "length":
        parts.append("max tokens reached")
    if s.get("dropped_messages"):
        parts.append(f"{s['dropped_messages']} old messages left out")
    return " · ".join(parts)


def _when(ts: float) -> str:
    if not ts:
        return ""
    t = time.localtime(ts)
    return time.strftime("%H:%M" if time.strftime("%Y%m%d", t) == time.strftime("%Y%m%d") else "%d %b %H:%M", t)


def _link(href: str, label: str, colors: ViewColors) -> str:
    return f'<a href="{href}" style="color: {colors.link}; text-decoration: none;">{label}</a>'


class BodyCache:
    """Rendered markdown bodies by (message, theme, text): reopening or re-rendering is cheap."""

    def __init__(self, size: int = 3000) -> None:
        self._size = size
        self._items: OrderedDict[tuple, Rendered] = OrderedDict()

    def get(self, message_id: int, text: str, dark: bool) -> Rendered:
        """The rendering of `text` for this message (computed once per theme and text)."""
        key = (message_id, dark, text)
        hit = self._items.get(key)
        if hit is None:
            hit = self._items[key] = render_markdown(text, dark, 0, copy_prefix(message_id))
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(key)
        return hit


def header_html(m: Message, colors: ViewColors) -> str:
    """'You · 12:03' or 'Assistant · 12:03', with an anchor to scroll to."""
    who = "You" if m.role == "user" else "Assistant" if m.role == "assistant" else m.role.title()
    return (f'<p style="margin-top: 14px; margin-bottom: 2px;"><a name="m{m.id}"></a>'
            f'<b style="color: {colors.accent};">{who}</b>'
            f'&nbsp;&nbsp;<font color="{colors.muted}" size="-1">{_when(m.created_at)}</font></p>\n')


def user_body_html(text: str, colors: ViewColors) -> str:
    """The user's words as typed (no markdown), in a tinted box."""
    body = html.escape(text).replace("\n", "<br>")
    return (f'<table width="100%" cellspacing="0" cellpadding="8" bgcolor="{colors.user_bg}"'
            f' style="border: 1px solid {colors.user_border}; border-style: solid;">'
            f'<tr><td><p style="margin: 0; white-space: pre-wrap;">{body}</p></td></tr></table>\n')


def footer_html(m: Message, ctx: MessageContext, colors: ViewColors) -> str:
    """Versions switcher, stats, status and the action links of a finished message."""
    bits: list[str] = []
    index, count = ctx.version
    if count > 1:
        prev = _link(f"action:prev:{m.id}", "&lt;", colors) if index > 1 else "&lt;"
        nxt = _link(f"action:next:{m.id}", "&gt;", colors) if index < count else "&gt;"
        bits.append(f"{prev} {index}/{count} {nxt}")
    if m.role == "assistant":
        note = _STATUS_NOTES.get(m.status)
        if note is not None:
            colour = getattr(colors, note[0])
            label = note[1] + (f": {html.escape(m.error)}" if m.error else "")
            bits.append(f'<font color="{colour}">{label}</font>')
        stats = stats_text(m)
        if stats:
            bits.append(html.escape(stats))
    actions = [_link(f"action:copy:{m.id}", "Copy", colors)]
    if m.role == "assistant":
        actions.append(_link(f"action:regen:{m.id}", "Regenerate", colors))
    elif m.role == "user":
        actions.append(_link(f"action:edit:{m.id}", "Edit", colors))
    actions += [_link(f"action:fork:{m.id}", "Fork", colors), _link(f"action:delete:{m.id}", "Delete", colors)]
    bits.append(" &nbsp;".join(actions))
    return (f'<p style="margin-top: 4px; margin-bottom: 6px;"><font color="{colors.muted}" size="-1">'
            + " &nbsp;·&nbsp; ".join(bits) + "</font></p>\n")


def message_html(m: Message, ctx: MessageContext, dark: bool, colors: ViewColors, cache: BodyCache) -> tuple[str, list[str]]:
    """The whole message, and the raw text of its code blocks (for the copy links)."""
    if m.role == "user":
        body, codes = user_body_html(m.content, colors), []
    else:
        rendered = cache.get(m.id, m.content, dark) if m.content else Rendered("<p></p>")
        body, codes = rendered.html, rendered.code_blocks
    return header_html(m, colors) + body + footer_html(m, ctx, colors), codes


def streaming_footer_html(colors: ViewColors) -> str:
    """The line under a reply while it is being written."""
    return f'<p style="margin-top: 4px;"><font color="{colors.muted}" size="-1">writing… (Esc to stop)</font></p>'


def more_html(hidden: int, colors: ViewColors) -> str:
    """The link at the top of a long conversation that shows its earlier messages."""
    return (f'<p align="center"><font size="-1">'
            f'{_link("action:more:0", f"Show {hidden} earlier messages", colors)}</font></p>\n')
