"""The context policy (pure logic, with a simple token counter)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmdesk.core.chat.context_window import fit_messages, reply_reserve
from lmdesk.core.errors import ContextOverflowError
from lmdesk.core.messages import ChatMessage as M
from lmdesk.core.params import ContextPolicy


def count(messages) -> int:
    """One token per character plus 4 per message, plus 3 for the generation prompt."""
    return sum(len(m.content) + 4 for m in messages) + 3


def conversation(turns: int, size: int = 50, system: bool = True) -> list[M]:
    msgs = [M("system", "s" * 20)] if system else []
    for i in range(turns):
        msgs += [M("user", f"{i}" + "u" * size), M("assistant", f"{i}" + "a" * size)]
    return msgs + [M("user", "last question")]


def test_reply_reserve_rule():
    assert reply_reserve(4096, 512) == 512
    assert reply_reserve(4096, 4096) == 1024  # never more than a quarter of the context
    assert reply_reserve(100, 0) == 0


def test_fits_unchanged():
    msgs = conversation(2)
    fitted = fit_messages(msgs, count, n_ctx=4096, max_tokens=512)
    assert fitted.messages == msgs and fitted.dropped == 0 and fitted.prompt_tokens == count(msgs)


def test_drop_oldest_keeps_system_and_last_message():
    msgs = conversation(10)  # ~1,100 "tokens"
    fitted = fit_messages(msgs, count, n_ctx=800, max_tokens=200)
    kept = fitted.messages
    assert kept[0] == msgs[0] and kept[-1] == msgs[-1]
    assert fitted.dropped > 0 and len(kept) == len(msgs) - fitted.dropped
    assert fitted.prompt_tokens == count(kept) <= 800 - 200
    assert kept[1].role == "user"  # never an assistant turn right after the system prompt
    # The newest turns survive, in order.
    assert kept[1:] == msgs[len(msgs) - len(kept) + 1:]


def test_drops_as_few_as_possible():
    msgs = conversation(10)
    fitted = fit_messages(msgs, count, n_ctx=800, max_tokens=200)
    # Keeping the next-older user/assistant pair would not fit.
    i = len(msgs) - len(fitted.messages) + 1
    assert count([msgs[0]] + msgs[i - 2:]) > 600


def test_last_message_alone_too_long_raises_with_numbers():
    msgs = [M("system", "be brief"), M("user", "x" * 5_000)]
    with pytest.raises(ContextOverflowError) as err:
        fit_messages(msgs, count, n_ctx=4096, max_tokens=512)
    assert err.value.message == (
        "the system prompt and message is 5,019 tokens but the model's context holds 4,096 "
        "(with 512 reserved for the reply)"
    )
    assert err.value.fix == "shorten it, or raise the context size"


def test_single_message_wording():
    with pytest.raises(ContextOverflowError, match=r"^the message is 5,210 tokens but the model's context holds 4,096"):
        fit_messages([M("user", "x" * 5_203)], count, n_ctx=4096, max_tokens=512)


def test_error_policy_refuses_instead_of_dropping():
    msgs = conversation(10)
    with pytest.raises(ContextOverflowError) as err:
        fit_messages(msgs, count, n_ctx=800, max_tokens=200, policy=ContextPolicy.ERROR)
    assert "the conversation is" in err.value.message and "new conversation" in err.value.fix


def test_no_system_prompt():
    msgs = conversation(10, system=False)
    fitted = fit_messages(msgs, count, n_ctx=400, max_tokens=100)
    assert fitted.messages[0].role == "user" and fitted.messages[-1] == msgs[-1]


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 300), min_size=1, max_size=30),
    system=st.booleans(),
    n_ctx=st.integers(64, 3000),
    max_tokens=st.integers(0, 1000),
)
def test_property_result_fits_and_keeps_essentials(sizes, system, n_ctx, max_tokens):
    msgs = [M("system", "s" * 30)] if system else []
    msgs += [M("user" if i % 2 == 0 else "assistant", "x" * n) for i, n in enumerate(sizes)]
    if msgs[-1].role != "user":
        msgs.append(M("user", "q"))
    try:
        fitted = fit_messages(msgs, count, n_ctx, max_tokens)
    except ContextOverflowError:
        essentials = [m for m in msgs if m.role == "system"] + [msgs[-1]]
        assert count(essentials) > n_ctx - reply_reserve(n_ctx, max_tokens)
        return
    assert fitted.prompt_tokens <= n_ctx - reply_reserve(n_ctx, max_tokens)
    assert fitted.messages[-1] is msgs[-1]
    assert [m for m in fitted.messages if m.role == "system"] == [m for m in msgs if m.role == "system"]
    non_system = [m for m in fitted.messages if m.role != "system"]
    assert non_system[0].role == "user"
    assert len(fitted.messages) + fitted.dropped == len(msgs)
