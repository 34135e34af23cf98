"""Word-level diff with accept/reject per change."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmdesk.core.text.word_diff import apply, change_indices, diff_stats, diff_words, tokenize

OLD = "The quick brown fox jumps over the lazy dog."
NEW = "A quick red fox leaps over the lazy dog!"


def test_accept_all_gives_the_new_text_and_reject_all_the_original():
    hunks = diff_words(OLD, NEW)
    assert apply(OLD, hunks, change_indices(hunks)) == NEW
    assert apply(OLD, hunks, set()) == OLD
    assert "".join(h.new_text for h in hunks) == NEW


def test_partial_accept_applies_only_the_chosen_changes():
    hunks = diff_words(OLD, NEW)
    changes = change_indices(hunks)
    assert [(hunks[i].old_text, hunks[i].new_text) for i in changes] == [
        ("The", "A"), ("brown", "red"), ("jumps", "leaps"), (".", "!"),
    ]
    assert apply(OLD, hunks, {changes[1]}) == "The quick red fox jumps over the lazy dog."
    assert apply(OLD, hunks, {changes[0], changes[3]}) == "A quick brown fox jumps over the lazy dog!"


def test_spans_point_into_both_texts():
    hunks = diff_words(OLD, NEW)
    for h in hunks:
        assert OLD[h.old_span[0]:h.old_span[1]] == h.old_text
        assert NEW[h.new_span[0]:h.new_span[1]] == h.new_text
    assert {h.kind for h in hunks} <= {"equal", "insert", "delete", "replace"}


def test_insert_delete_and_folded_replacements():
    ins = diff_words("hello world", "hello big world")
    assert [(h.kind, h.new_text) for h in ins if h.is_change] == [("insert", "big ")]
    dele = diff_words("hello big world", "hello world")
    assert [(h.kind, h.old_text) for h in dele if h.is_change] == [("delete", "big ")]
    rep = diff_words("the cat sat", "a dog sat")  # two words separated by a space: one change
    assert [(h.old_text, h.new_text) for h in rep if h.is_change] == [("the cat", "a dog")]
    assert diff_stats(rep) == (2, 2)


def test_cjk_is_diffed_per_character():
    hunks = diff_words("我爱北京天安门。", "我爱上海外滩。")
    changes = [(hunks[i].old_text, hunks[i].new_text) for i in change_indices(hunks)]
    assert changes == [("北京天安门", "上海外滩")]
    assert tokenize("你好world") == ["你", "好", "world"]


def test_hunks_from_another_text_are_refused():
    with pytest.raises(ValueError):
        apply("something else", diff_words(OLD, NEW), [])


words = st.lists(
    st.sampled_from(["the", "a", "cat", "dog", " ", "  ", "\n", ",", ".", "你", "好", "é", "😀", "don't", "\n\n"])
    | st.text(max_size=3),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(old=words, new=words, data=st.data())
def test_apply_all_is_new_none_is_old_any_subset_is_consistent(old, new, data):
    assert "".join(tokenize(old)) == old
    hunks = diff_words(old, new)
    changes = change_indices(hunks)
    assert apply(old, hunks, changes) == new
    assert apply(old, hunks, []) == old
    subset = data.draw(st.sets(st.sampled_from(changes)) if changes else st.just(set()))
    out = apply(old, hunks, subset)
    # Accepting a subset and then diffing again from there, accepting the rest, reaches `new`.
    rest = diff_words(out, new)
    assert apply(out, rest, change_indices(rest)) == new
    assert all(not (hunks[i].kind == "equal") for i in changes)
