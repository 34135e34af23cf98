"""The translation chunker: budgets hold, nothing is lost or reordered, structure survives."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmdesk.core.text.chunking import (
    Chunk,
    estimate_tokens,
    paragraph_count,
    plan_budget,
    previous_tail,
    reassemble,
    split_for_translation,
)
from lmdesk.core.errors import ContextOverflowError


def utf8_tokens(text: str) -> int:
    """A byte-level tokenizer stand-in (the worst case: one token per UTF-8 byte)."""
    return len(text.encode("utf-8", "surrogatepass"))


COUNTERS = {"estimate": estimate_tokens, "chars": len, "bytes": utf8_tokens}

FRAGMENTS = [
    "Hello", "world", "the", "cat", "sat", "你好", "世界", "中文句子", "こんにちは", "한국어",
    "مرحبا", "שלום", "Привет", "😀", "👩‍👩‍👧", "e\u0301", "2024", " ", "  ", "\t", "\n", "\n\n",
    "\n \n", "\r\n", "\r\n\r\n", "\u3000", "\u00a0", ". ", "! ", "? ", "。", "！", "？", "，", "、",
    ", ", "; ", "…", "# ", "## ", "- ", "* ", "+ ", "1. ", "2) ", "> ", "- [ ] ", "---", "***",
    "```", "~~~", "|", ":", "\n# ", "\n- ", "\n1. ", "\n> ", "\n```\n",
]

texts = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), max_size=60
).map("".join)


def paragraphs_of(text: str) -> int:
    """Paragraph count by an independent rule: runs of non-blank lines split on '\\n'."""
    count, in_par = 0, False
    for line in text.split("\n"):
        blank = not line.strip()
        if not blank and not in_par:
            count += 1
        in_par = not blank
    return count


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, budget=st.integers(4, 60), counter=st.sampled_from(sorted(COUNTERS)))
def test_chunks_fit_and_cover_the_input_exactly(text, budget, counter):
    count = COUNTERS[counter]
    chunks = split_for_translation(text, budget, count)
    assert "".join(c.source for c in chunks) == text  # nothing lost, nothing reordered
    assert reassemble(chunks, [c.text for c in chunks]) == text  # identity translation
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        if c.translate:
            assert count(c.text) <= budget
            assert c.tokens == count(c.text)
            assert c.text and c.text == c.text.strip()
    paras = [c.paragraph_index for c in chunks]
    assert paras == sorted(paras)
    assert all(c.is_paragraph_start == (i == 0 or paras[i - 1] != p) for i, (c, p) in enumerate(zip(chunks, paras)))


fake_translations = st.one_of(
    st.just("upper"), st.just("wordy"), st.text(max_size=12),
    st.sampled_from(["", "  ", "\n\n", "a\n\nb", "- X", "# Y\n", " z \n \n w ", "你好\n世界"]),
)


def _translate(c: Chunk, how: str) -> str:
    if how == "upper":
        return c.text.upper()
    if how == "wordy":
        return "translated " + c.text[::-1] + " text"
    return how


@settings(max_examples=300, deadline=None)
@given(text=texts, budget=st.integers(4, 40), how=fake_translations)
def test_paragraph_alignment_holds_for_any_translation(text, budget, how):
    chunks = split_for_translation(text, budget, estimate_tokens)
    out = reassemble(chunks, [_translate(c, how) for c in chunks])
    assert paragraphs_of(out) == paragraphs_of(text)


WORDS = ["alpha", "beta", "gamma", "delta", "epsilon"]
MARKERS = ["", "# ", "## ", "### ", "- ", "* ", "+ ", "1. ", "12. ", "3) ", "> ", "  - ", "> - "]
md_line = st.tuples(
    st.sampled_from(MARKERS), st.lists(st.sampled_from(WORDS), min_size=1, max_size=12)
).map(lambda t: t[0] + " ".join(t[1]) + ".")
md_docs = st.lists(st.tuples(md_line, st.sampled_from(["\n", "\n\n", "\n\n\n", "  \n\n"])), min_size=1, max_size=12).map(
    lambda parts: "".join(line + sep for line, sep in parts)
)


@settings(max_examples=200, deadline=None)
@given(doc=md_docs, budget=st.integers(3, 30))
def test_markdown_markers_survive_fake_translation(doc, budget):
    chunks = split_for_translation(doc, budget, estimate_tokens)
    assert reassemble(chunks, [c.text.upper() for c in chunks]) == doc.upper()
    # A model that repeats the marker itself does not get it twice.
    assert reassemble(chunks, [c.prefix.strip() + " " + c.text for c in chunks]) == doc


def test_markers_and_blank_lines_in_a_document():
    doc = "# Title\n\nIntro line one.\nline two.\n\n- one\n- two\n* [x] three\n\n1. first\n2) second\n\n> quote\n---\n"
    chunks = split_for_translation(doc, 100)
    assert [c.text for c in chunks if c.translate] == [
        "Title", "Intro line one.\nline two.", "one", "two", "three", "first", "second", "quote",
    ]
    assert [c.prefix for c in chunks if c.translate][:3] == ["# ", "", "- "]
    out = reassemble(chunks, ["<" + c.text.upper() + ">" for c in chunks])
    assert out == (
        "# <TITLE>\n\n<INTRO LINE ONE.\nLINE TWO.>\n\n- <ONE>\n- <TWO>\n* [x] <THREE>\n\n"
        "1. <FIRST>\n2) <SECOND>\n\n> <QUOTE>\n---\n"
    )
    assert paragraph_count(chunks) == paragraphs_of(doc) == 5


def test_code_fences_are_copied_verbatim_even_with_blank_lines():
    doc = "Text.\n\n```python\nx = 1\n\n\ny = 2\n```\n\nMore text.\n"
    chunks = split_for_translation(doc, 50)
    code = [c for c in chunks if not c.translate]
    assert len(code) == 1 and "y = 2" in code[0].text
    assert reassemble(chunks, [c.text.upper() for c in chunks]) == "TEXT.\n\n```python\nx = 1\n\n\ny = 2\n```\n\nMORE TEXT.\n"


def test_backticks_on_one_line_are_not_a_fence():
    chunks = split_for_translation("```code``` is inline.\n\nNext.", 50)
    assert [c.translate for c in chunks] == [True, True]


def test_heading_and_list_items_stay_one_line_and_empty_answers_keep_the_source():
    chunks = split_for_translation("# Title\n- item\n", 50)
    out = reassemble(chunks, ["A\ntranslated\n\ntitle", ""])
    assert out == "# A translated title\n- item\n"


def test_long_paragraph_splits_into_sentences_packed_to_the_budget():
    text = " ".join(f"Sentence number {i} is here." for i in range(200))
    chunks = split_for_translation(text, 40)
    assert len(chunks) > 5
    assert all(c.text.endswith(".") for c in chunks)  # cut at sentence ends, never mid-sentence
    assert all(c.tokens <= 40 for c in chunks)
    assert all(c.paragraph_index == 0 for c in chunks)
    assert previous_tail(chunks, 0) == "" and chunks[0].text.endswith(previous_tail(chunks, 1))


def _chinese(n: int, seed: int = 7, punctuation: bool = False) -> str:
    rng = random.Random(seed)
    chars = [chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(n)]
    if punctuation:
        for i in range(37, n, 41):
            chars[i] = "。"
    return "".join(chars)


@pytest.mark.parametrize("punctuation", [False, True])
def test_one_megabyte_chinese_paragraph_splits_and_rejoins_exactly(punctuation):
    text = _chinese(1_000_000 // 3 + 1, punctuation=punctuation)  # 1 MB of UTF-8, no spaces
    assert len(text.encode()) >= 1_000_000
    chunks = split_for_translation(text, 500, estimate_tokens)
    assert len(chunks) > 600
    assert all(c.translate and estimate_tokens(c.text) <= 500 for c in chunks)
    assert "".join(c.text + c.separator_after for c in chunks) == text
    assert reassemble(chunks, [c.text for c in chunks]) == text
    assert paragraph_count(chunks) == 1


def test_one_megabyte_of_latin_without_spaces_is_hard_split():
    text = "a" * 1_000_000
    chunks = split_for_translation(text, 300, utf8_tokens)
    assert all(len(c.text) <= 300 for c in chunks)
    assert reassemble(chunks, [c.text for c in chunks]) == text


def test_hard_split_keeps_emoji_sequences_whole():
    family = "👩\u200d👩\u200d👧"
    text = "x" + family * 50
    chunks = split_for_translation(text, 8, len)
    for c in chunks:
        assert not c.text.startswith("\u200d") and not c.text.endswith("\u200d")


def test_cjk_sentences_translated_into_a_spaced_language_get_a_space():
    text = "你好。" * 20 + "世界。" * 20
    chunks = split_for_translation(text, 10, estimate_tokens)
    assert len(chunks) > 2 and all(c.separator_after == "" for c in chunks)
    out = reassemble(chunks, ["Hello." for _ in chunks])
    assert out == " ".join(["Hello."] * len(chunks))


def test_partial_reassembly_stops_at_the_first_missing_chunk():
    chunks = split_for_translation("One.\n\nTwo.\n\nThree.", 50)
    assert reassemble(chunks, ["Un."], partial=True) == "Un.\n\n"
    assert reassemble(chunks, ["Un.", None, "Trois."]) == "Un.\n\nTwo.\n\nTrois."


def test_whitespace_only_and_empty_inputs():
    assert split_for_translation("", 10) == []
    chunks = split_for_translation("\n \n\t", 10)
    assert len(chunks) == 1 and not chunks[0].translate
    assert reassemble(chunks, []) == "\n \n\t"


def test_plan_budget_rule():
    b = plan_budget(2048, prompt_overhead=120)
    assert b.prompt_overhead + b.chunk_tokens + b.expansion * b.chunk_tokens + b.margin <= 2048
    assert b.max_new_tokens(b.chunk_tokens) >= b.expansion * b.chunk_tokens
    assert b.chunk_tokens + 120 + b.max_new_tokens(b.chunk_tokens) <= 2048
    assert plan_budget(100_000, 100).chunk_tokens == 512  # capped: short chunks translate better
    with pytest.raises(ContextOverflowError):
        plan_budget(128, prompt_overhead=100)
