"""Markdown → QTextBrowser HTML: structure, highlighting, copy links, safety, and streaming splits."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from lmdesk.core.render.markdown import DARK, LIGHT, render_markdown, split_last_block


def html(text: str, **kw) -> str:
    return render_markdown(text, **kw).html


def test_headings_paragraphs_and_emphasis():
    out = html("# Title\n\n## Sub\n\nSome **bold** and *italic* and ~~gone~~.")
    assert "<h1>Title</h1>" in out and "<h2>Sub</h2>" in out
    assert "<strong>bold</strong>" in out and "<em>italic</em>" in out and "<s>gone</s>" in out


def test_lists():
    out = html("- one\n- two\n\n1. first\n2. second\n")
    assert out.count("<li>") == 4
    assert "<ul>" in out and "<ol>" in out


def test_tables_have_borders_and_alignment_as_attributes():
    out = html("| name | n |\n|:-----|--:|\n| a | 1 |\n| b | 22 |\n")
    assert re.search(r'<table border="1" cellspacing="0" cellpadding="4"', out)
    assert '<th align="left">name</th>' in out and '<td align="right">22</td>' in out
    assert "text-align" not in out  # Qt ignores CSS text-align on cells


def test_links_are_kept_but_unsafe_schemes_are_not():
    out = html("[site](https://example.com/a?b=1&c=2) <https://auto.link> [mail](mailto:a@b.c)")
    assert f'<a href="https://example.com/a?b=1&amp;c=2" style="color: {LIGHT.link};">site</a>' in out
    assert '<a href="https://auto.link"' in out and '<a href="mailto:a@b.c"' in out
    for bad in ("[x](javascript:alert(1))", "[x](file:///etc/passwd)", "[x](copy:0)", "[x](relative/page.html)"):
        out = html(bad)
        assert "<a " not in out, bad


def test_images_are_never_loaded():
    out = html("![a cat](https://example.com/cat.png) and ![](data:image/png;base64,AAAA) and ![x](file:///x.png)")
    assert "<img" not in out.lower()
    assert re.search(r'<a href="https://example.com/cat.png"[^>]*>\[image: a cat\]</a>', out)
    assert "[image]" in out  # no alt text; data: URLs are not links either
    assert "data:" not in out
    assert '"file:' not in out  # markdown-it leaves a file: image as literal text


def test_raw_html_is_escaped():
    out = html('<script>alert(1)</script>\n\nText with <b>tag</b> and <img src="http://x/y.png">')
    assert "<script" not in out and "<b>" not in out and "<img" not in out
    assert "&lt;script&gt;" in out and "&lt;b&gt;tag&lt;/b&gt;" in out


def test_inline_code_is_escaped_and_shaded():
    out = html("Use `a < b && c` here.")
    assert f'<code style="background-color: {LIGHT.inline_code_bg};">a &lt; b &amp;&amp; c</code>' in out


def test_fenced_code_is_highlighted_with_a_copy_link_and_raw_text():
    src = "Intro\n\n```python\ndef f(x):\n    return '<x>'\n```\n\nMiddle\n\n~~~\nplain <text>\n~~~\n\n    indented code\n"
    r = render_markdown(src)
    assert r.code_blocks == ["def f(x):\n    return '<x>'", "plain <text>", "indented code"]
    assert [int(n) for n in re.findall(r'href="copy:(\d+)"', r.html)] == [0, 1, 2]
    assert "<span style=" in r.html  # Pygments inline styles, no classes
    assert "class=" not in r.html
    assert "&#x27;&lt;x&gt;&#x27;" in r.html or "'&lt;x&gt;'" in r.html  # code text escaped
    assert ">python</font>" in r.html
    assert f'bgcolor="{LIGHT.code_bg}"' in r.html


def test_dark_theme_and_copy_numbering_options():
    r = render_markdown("```js\nlet a = 1;\n```\n\n```unknown-lang\nzzz\n```", dark=True, code_base=5, copy_prefix="copy:12:")
    assert 'href="copy:12:5"' in r.html and 'href="copy:12:6"' in r.html
    assert f'bgcolor="{DARK.code_bg}"' in r.html and LIGHT.code_bg not in r.html
    assert r.code_blocks == ["let a = 1;", "zzz"]  # an unknown language still renders, as plain text


def test_an_unclosed_fence_renders_as_code_while_streaming():
    r = render_markdown("```py\nprint('hi')\n")
    assert r.code_blocks == ["print('hi')"]


def test_split_last_block_simple_cases():
    assert split_last_block("") == ("", "")
    assert split_last_block("one para") == ("", "one para")
    assert split_last_block("a\n\nb\n\nc") == ("a\n\nb\n\n", "c")
    assert split_last_block("a\n\nb\n\n") == ("a\n\n", "b\n\n")  # a trailing blank line is not a boundary yet
    assert split_last_block("a\n \t\nb") == ("a\n \t\n", "b")  # whitespace-only lines are blank


def test_split_last_block_open_fence_keeps_the_rest():
    text = "para\n\n```py\ncode\n\nmore code\n\n"
    assert split_last_block(text) == ("para\n\n", "```py\ncode\n\nmore code\n\n")
    closed = text + "```\n\nafter"
    assert split_last_block(closed) == (text + "```\n\n", "after")
    # A shorter or different fence does not close it; a longer one does.
    assert split_last_block("````\nx\n```\n\ny")[0] == ""
    assert split_last_block("```\nx\n~~~\n\ny")[0] == ""
    assert split_last_block("```\nx\n`````\n\ny") == ("```\nx\n`````\n\n", "y")
    # Inline code that starts a line is not a fence.
    assert split_last_block("```a` b\n\nc") == ("```a` b\n\n", "c")
    # Fences in blockquotes and list items count too.
    assert split_last_block("> ```\n> x\n>\n> y") == ("", "> ```\n> x\n>\n> y")
    assert split_last_block("1. item\n\n   ```\n   a\n\n   b") == ("1. item\n\n", "   ```\n   a\n\n   b")


markdownish = st.lists(
    st.sampled_from(["", "\n", "\n\n", "```", "```py", "~~~", "````", "> ", "- ", "  ", "text", "`x`", "# h", "\t", "\r\n", "|a|"]),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(markdownish, st.text(max_size=200)))
def test_split_last_block_always_concatenates_back(text):
    prefix, last = split_last_block(text)
    assert prefix + last == text
    if prefix:
        assert prefix.endswith("\n") and prefix.split("\n")[-2].strip() == ""  # it ends on a blank line
        # The prefix ends outside any fence: whatever follows starts a block of its own.
        assert split_last_block(prefix + "z") == (prefix, "z")


@settings(max_examples=300, deadline=None)
@given(markdownish, markdownish)
def test_split_prefix_only_grows_as_text_streams_in(text, more):
    """What the view rendered as stable never has to be rendered again."""
    before, _ = split_last_block(text)
    after, _ = split_last_block(text + more)
    assert after.startswith(before)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_rendering_never_fails_or_emits_images(text):
    r = render_markdown(text)
    assert "<img" not in r.html.lower()
    assert "<script" not in r.html.lower()
