"""The context policy: which messages of a conversation go into the prompt when it is too long.

Pure logic over a token-counting function, shared by every backend.

Room for the reply: a prompt may use at most `n_ctx - reply_reserve(n_ctx, max_tokens)` tokens,
where the reserve is `min(max_tokens, n_ctx // 4)`. The cap at a quarter of the context keeps a
large max_tokens (say 4,096 with a 4,096 context) from leaving no room for the question itself;
the reply may still run past the reserve until the context is full (then it stops with "length").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lmdesk.core.errors import ContextOverflowError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import ContextPolicy, GenerationParams

TokenCounter = Callable[[Sequence[ChatMessage]], int]


@dataclass
class FittedPrompt:
    """The messages that fit, how many were dropped, and their rendered token count."""

    messages: list[ChatMessage]
    dropped: int
    prompt_tokens: int


def reply_reserve(n_ctx: int, max_tokens: int) -> int:
    """Tokens kept free for the reply: min(max_tokens, n_ctx // 4)."""
    return max(0, min(max_tokens, n_ctx // 4))


def _drop_points(messages: Sequence[ChatMessage]) -> list[int]:
    """Indices of droppable messages in the order they go (oldest first).

    System messages and the last message are never dropped. A drop never leaves an assistant
    message first after the system prompt: many templates insist that user comes first.
    """
    last = len(messages) - 1
    return [i for i, m in enumerate(messages) if m.role != "system" and i != last]


def _without(messages: Sequence[ChatMessage], drop: set[int]) -> list[ChatMessage]:
    return [m for i, m in enumerate(messages) if i not in drop]


def _prefix_sizes(messages: Sequence[ChatMessage], order: list[int]) -> list[int]:
    """How many of `order` may be dropped at once: counts that end before a user message."""
    sizes = [0]
    for k in range(1, len(order) + 1):
        nxt = order[k] if k < len(order) else len(messages) - 1
        if messages[nxt].role != "assistant":
            sizes.append(k)
    return sizes


def fit_messages(
    messages: Sequence[ChatMessage],
    count_tokens: TokenCounter,
    n_ctx: int,
    max_tokens: int,
    policy: ContextPolicy = ContextPolicy.DROP_OLDEST,
) -> FittedPrompt:
    """Messages that fit `n_ctx` with room for the reply; ContextOverflowError when none can."""
    messages = list(messages)
    reserve = reply_reserve(n_ctx, max_tokens)
    budget = n_ctx - reserve
    total = count_tokens(messages)
    if total <= budget:
        return FittedPrompt(messages, 0, total)
    if policy == ContextPolicy.ERROR or len(messages) <= 1:
        what = "the conversation" if len(messages) > 1 else "the message"
        raise _overflow(what, total, n_ctx, reserve, policy)

    order = _drop_points(messages)
    sizes = _prefix_sizes(messages, order)
    # Binary search the smallest drop count that fits: fewer tokens the more we drop.
    lo, hi = 0, len(sizes) - 1
    counts: dict[int, int] = {0: total}

    def count(j: int) -> int:
        if j not in counts:
            counts[j] = count_tokens(_without(messages, set(order[: sizes[j]])))
        return counts[j]

    if count(hi) > budget:
        what = "the message" if not any(m.role == "system" for m in messages) else "the system prompt and message"
        raise _overflow(what, count(hi), n_ctx, reserve, policy)
    while lo < hi:
        mid = (lo + hi) // 2
        if count(mid) <= budget:
            hi = mid
        else:
            lo = mid + 1
    kept = _without(messages, set(order[: sizes[lo]]))
    return FittedPrompt(kept, sizes[lo], count(lo))


def fit_and_tokenize(
    messages: Sequence[ChatMessage],
    count_tokens: TokenCounter,
    tokenize: Callable[[Sequence[ChatMessage]], list[int]],
    n_ctx: int,
    params: GenerationParams,
) -> tuple[list[int], int]:
    """The prompt tokens of `messages` after the context policy, and how many turns were dropped.
    Raises ContextOverflowError if the final tokens still leave no room (a safety net: the
    counter and the tokenizer should agree)."""
    fitted = fit_messages(messages, count_tokens, n_ctx, params.max_tokens, params.context_policy)
    tokens = tokenize(fitted.messages)
    if len(tokens) >= n_ctx:
        raise ContextOverflowError(
            f"the prompt is {len(tokens):,} tokens but the model's context holds {n_ctx:,}",
            "shorten it, or raise the context size",
        )
    return tokens, fitted.dropped


def _overflow(what: str, tokens: int, n_ctx: int, reserve: int, policy: ContextPolicy) -> ContextOverflowError:
    fix = "shorten it, or raise the context size"
    if policy == ContextPolicy.ERROR and what == "the conversation":
        fix = "start a new conversation, drop old turns, or raise the context size"
    return ContextOverflowError(
        f"{what} is {tokens:,} tokens but the model's context holds {n_ctx:,} "
        f"(with {reserve:,} reserved for the reply)",
        fix,
    )
