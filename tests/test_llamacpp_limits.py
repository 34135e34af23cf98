"""The GGUF backend at its limits: a prompt far beyond the context is refused without tokenising
it, a context smaller than llama.cpp's minimum works, and the first prompt slice is small."""

from __future__ import annotations

import threading

import pytest

from lmdesk.backends import load_backend
from lmdesk.backends.llamacpp import SLICE_MIN
from lmdesk.core.errors import ContextOverflowError
from lmdesk.core.messages import ChatMessage as M
from lmdesk.core.params import GenerationParams, LoadOptions
from lmdesk.core.stats import GenerationStats

GREEDY = GenerationParams(max_tokens=8, temperature=0.0, seed=0)


@pytest.fixture(scope="module")
def backend(embedded_model_path):
    b = load_backend("llama", embedded_model_path, LoadOptions(n_ctx=512))
    yield b
    b.close()


def run(backend, messages, params=GREEDY):
    out = list(backend.generate(messages, params, threading.Event()))
    assert isinstance(out[-1], GenerationStats)
    return "".join(out[:-1]), out[-1]


def spy_tokenize(monkeypatch, backend) -> list[int]:
    """Record the bytes of every text handed to llama.cpp's tokenizer."""
    llm, sizes = backend._llm, []
    real = llm.tokenize
    monkeypatch.setattr(llm, "tokenize", lambda text, *a, **k: sizes.append(len(text)) or real(text, *a, **k))
    return sizes


def test_a_prompt_far_beyond_the_context_is_refused_without_tokenising_it(backend, monkeypatch):
    sizes = spy_tokenize(monkeypatch, backend)
    with pytest.raises(ContextOverflowError, match="context holds 512"):
        run(backend, [M("system", "Be brief."), M("user", "word " * 400_000)])
    assert all(n <= 512 * backend.longest_piece() for n in sizes), sizes


def test_a_huge_old_turn_is_dropped_without_tokenising_it(backend, monkeypatch):
    sizes = spy_tokenize(monkeypatch, backend)
    history = [M("user", "word " * 400_000), M("assistant", "Noted."), M("user", "Say hi.")]
    _, stats = run(backend, history)
    assert stats.dropped_messages == 2 and stats.stop_reason in ("stop", "length")
    assert all(n <= 512 * backend.longest_piece() for n in sizes), sizes


def test_the_bound_never_refuses_a_prompt_that_fits(backend):
    # The longest tokens of the vocabulary, back to back, as many as the context holds.
    import ctypes

    lib, vocab = backend._lib, backend._vocab
    buf = ctypes.create_string_buffer(256)
    pieces = []
    for token in range(lib.llama_vocab_n_tokens(vocab)):
        n = lib.llama_token_to_piece(vocab, token, buf, len(buf), 0, True)
        pieces.append(buf[:n])
    longest = max(pieces, key=len).decode("utf-8", errors="replace")
    assert backend.min_tokens(longest * 511, 512) < 512


def test_a_context_below_llama_cpps_minimum_uses_the_context_it_made(embedded_model_path):
    b = load_backend("llama", embedded_model_path, LoadOptions(n_ctx=16))
    try:
        assert b.context_length == b._llm.n_ctx() >= 16
        text, stats = run(b, [M("user", "hello there how are you doing today my friend")])
        assert stats.stop_reason in ("stop", "length") and stats.prompt_tokens > 16
    finally:
        b.close()


def test_the_first_prompt_slice_of_a_fresh_model_is_small(embedded_model_path, monkeypatch):
    b = load_backend("llama", embedded_model_path, LoadOptions(n_ctx=2048))
    try:
        llm, sizes, cancel = b._llm, [], threading.Event()
        real_eval = llm.eval

        def eval_spy(tokens):
            sizes.append(len(tokens))
            real_eval(tokens)
            cancel.set()  # one slice is all this test needs

        monkeypatch.setattr(llm, "eval", eval_spy)
        prompt = "List these numbers: " + ", ".join(str(i) for i in range(60))
        out = list(b.generate([M("user", prompt)], GenerationParams(max_tokens=1), cancel))
        assert out[-1].stop_reason == "cancelled" and out[-1].prompt_tokens > 4 * SLICE_MIN
        assert sizes and sizes[0] <= SLICE_MIN, sizes
    finally:
        b.close()
