"""The llama backend on the real embedded model: streaming, cancel (during prompt and generation),
prefix reuse, UTF-8 safety, the context policy, stop reasons and reproducible sampling."""

from __future__ import annotations

import threading

import pytest

from lmdesk.backends import load_backend
from lmdesk.backends.base import Backend
from lmdesk.backends.llamacpp import SLICE_MIN, SLICE_TARGET_SECONDS, load, next_slice_size, shared_prefix_length
from lmdesk.core.errors import ContextOverflowError, GenerationError, ModelLoadError
from lmdesk.core.messages import ChatMessage as M
from lmdesk.core.params import ContextPolicy, GenerationParams, LoadOptions
from lmdesk.core.stats import GenerationStats
from lmdesk.core.text.stream import TextStream

GREEDY = GenerationParams(max_tokens=40, temperature=0.0, seed=0)
MIXED = "你好，世界 🌍 こんにちは"


@pytest.fixture(scope="module")
def backend(embedded_model_path):
    b = load_backend("llama", embedded_model_path)
    yield b
    b.close()


def run(backend, messages, params=GREEDY, cancel=None):
    """(pieces, stats) of one generation."""
    out = list(backend.generate(messages, params, cancel or threading.Event()))
    assert isinstance(out[-1], GenerationStats)
    assert all(isinstance(p, str) for p in out[:-1])
    return out[:-1], out[-1]


def test_backend_shape(backend, embedded_model_path):
    assert isinstance(backend, Backend)
    assert backend.name == "llama" and backend.device == "cpu"
    assert backend.capabilities.cancel_during_prompt and backend.capabilities.prefix_cache
    assert backend.capabilities.lora
    assert backend.context_length == 4096  # LoadOptions' n_ctx (the model was trained for 8,192)
    assert backend.model_path == embedded_model_path and backend.info.architecture == "llama"


def test_context_capped_to_trained_length(embedded_model_path):
    from lmdesk.core.params import LoadOptions

    b = load_backend("llama", embedded_model_path, LoadOptions(n_ctx=100_000))
    try:
        assert b.context_length == 8192
    finally:
        b.close()


def test_streams_text_and_stats(backend):
    pieces, stats = run(backend, [M("system", "Be brief."), M("user", "Say hello.")])
    assert "".join(pieces).strip()
    assert stats.stop_reason in ("stop", "length")
    assert stats.prompt_tokens == backend.count_tokens([M("system", "Be brief."), M("user", "Say hello.")])
    assert 0 < stats.prompt_tokens_evaluated <= stats.prompt_tokens
    assert stats.generated_tokens >= len(pieces) > 0
    assert stats.time_to_first_token is not None and stats.generation_seconds > 0
    assert stats.tokens_per_second > 0


def test_max_tokens_gives_length(backend):
    pieces, stats = run(backend, [M("user", "Write a long essay about rivers.")],
                        GenerationParams(max_tokens=5, temperature=0.0))
    assert stats.stop_reason == "length" and stats.generated_tokens == 5


def test_stop_string_ends_generation(backend):
    pieces, stats = run(backend, [M("user", "Write a long essay about rivers.")],
                        GenerationParams(max_tokens=80, temperature=0.0, stop=(" ",)))
    text = "".join(pieces)
    assert stats.stop_reason == "stop" and " " not in text


def test_cancel_mid_generation(backend):
    cancel = threading.Event()
    pieces = []
    stats = None
    for item in backend.generate([M("user", "Write a long essay about rivers.")],
                                 GenerationParams(max_tokens=400, temperature=0.0), cancel):
        if isinstance(item, GenerationStats):
            stats = item
        else:
            pieces.append(item)
            if len(pieces) == 3:
                cancel.set()
    assert stats.stop_reason == "cancelled"
    assert stats.generated_tokens <= 4


def long_prompt(n_items: int = 160) -> str:
    return "Summarise this list:\n" + "\n".join(
        f"Item {i}: the quick brown fox jumps over the lazy dog number {i}." for i in range(n_items)
    )


def test_cancel_during_long_prompt_then_next_request_works(backend, monkeypatch):
    msgs = [M("user", long_prompt())]
    assert backend.count_tokens(msgs) >= 2000
    llm = backend._llm
    cancel = threading.Event()
    slices: list[tuple[int, bool]] = []  # (tokens, cancel already set) of each prompt slice
    real_eval = llm.eval

    def eval_spy(tokens):
        slices.append((len(tokens), cancel.is_set()))
        real_eval(tokens)
        if len(slices) == 2:
            cancel.set()  # Stop pressed while the second slice was being evaluated

    monkeypatch.setattr(llm, "eval", eval_spy)
    llm.reset()  # nothing of this prompt is cached: every slice is real prompt evaluation
    pieces, stats = run(backend, msgs, GenerationParams(max_tokens=20), cancel)
    monkeypatch.undo()
    print(f"cancelled during prompt; slices {slices}; evaluated {stats.prompt_tokens_evaluated}"
          f" of {stats.prompt_tokens}")
    assert stats.stop_reason == "cancelled" and pieces == []
    assert stats.prompt_tokens >= 2000
    # Stop takes effect at the next slice boundary: not one more token is evaluated after it, and
    # a slice is a bounded piece of the prompt (sized to take a fraction of a second).
    assert len(slices) == 2 and not any(after for _, after in slices)
    assert stats.prompt_tokens_evaluated == sum(n for n, _ in slices) < stats.prompt_tokens
    assert all(n <= llm.n_batch for n, _ in slices)
    # The KV cache holds exactly the tokens that were evaluated, a prefix of this prompt.
    prompt_ids = backend.tokenize_prompt(backend.render(msgs))
    assert llm.n_tokens == stats.prompt_tokens_evaluated
    assert list(llm.input_ids[: llm.n_tokens]) == prompt_ids[: llm.n_tokens]
    # And the next request works normally.
    pieces, stats = run(backend, [M("user", "Say hi.")])
    assert stats.stop_reason in ("stop", "length") and "".join(pieces).strip()


def test_slice_size_follows_the_measured_rate():
    # ~SLICE_TARGET_SECONDS of work a slice, between SLICE_MIN and n_batch.
    assert next_slice_size(64, 64, 64 / 400, 512) == int(400 * SLICE_TARGET_SECONDS)
    assert next_slice_size(64, 64, 10.0, 512) == SLICE_MIN
    assert next_slice_size(64, 64, 1e-4, 512) == 512
    # A slice smaller than planned (a single token, a prompt's last scrap) pays the fixed cost of
    # a decode over few tokens: it may grow the next slice, never shrink it.
    assert next_slice_size(120, 1, 0.02, 512) == 120
    assert next_slice_size(120, 30, 0.01, 512) == int(3000 * SLICE_TARGET_SECONDS)


def test_short_prompt_tail_is_one_slice(backend, monkeypatch):
    """A few new tokens (the next turn of a chat) go in one decode, not a slice and a scrap."""
    llm = backend._llm
    sizes: list[int] = []
    real_eval = llm.eval
    monkeypatch.setattr(llm, "eval", lambda tokens: sizes.append(len(tokens)) or real_eval(tokens))
    backend._slice = SLICE_MIN  # as after a slow machine's slice
    n = SLICE_MIN + SLICE_MIN // 2
    tokens = backend.tokenize_prompt(backend.render([M("user", "count: " + " ".join(["1"] * 40))]))[:n]
    llm.reset()
    assert backend._eval_prompt(tokens, threading.Event()) == n
    assert sizes == [n]


def test_prefix_reuse_on_turn_two(backend):
    turn1 = [M("system", "You are a helpful assistant."), M("user", long_prompt(20))]
    pieces, s1 = run(backend, turn1)
    turn2 = turn1 + [M("assistant", "".join(pieces)), M("user", "Thanks. And item 3?")]
    _, s2 = run(backend, turn2)
    print(f"turn 2: evaluated {s2.prompt_tokens_evaluated} of {s2.prompt_tokens} prompt tokens")
    assert s2.prompt_tokens > s1.prompt_tokens
    assert s2.prompt_tokens_evaluated < s2.prompt_tokens // 4
    # The very same request again: only the last token is re-evaluated (its logits are needed).
    _, s3 = run(backend, turn2)
    assert s3.prompt_tokens_evaluated == 1


def full_tokens(backend, text: str) -> list[int]:
    """The tokens of a rendered prompt, tokenised whole (no cache)."""
    add_bos = bool(backend._llm._model.add_bos_token()) and not text.startswith(backend.info.bos_token)
    return backend._llm.tokenize(text.encode(), add_bos=add_bos, special=True)


def test_shared_prefix_length():
    assert shared_prefix_length("abc", "abcdef") == 3
    assert shared_prefix_length("abcdef", "abc") == 3
    assert shared_prefix_length("abXdef", "abYdef") == 2
    assert shared_prefix_length("", "abc") == shared_prefix_length("abc", "") == 0
    assert shared_prefix_length("xyz", "abc") == 0
    for n in range(0, 40):
        a = "ab" * 20
        assert shared_prefix_length(a, a[:n] + "Z" + a[n + 1:]) == n


def test_tokenised_prefix_cache_gives_the_same_tokens_as_a_full_tokenisation(backend, monkeypatch):
    """Each turn of a growing conversation (and a regenerated, an edited, a shorter and an
    unrelated prompt) tokenises exactly as the whole text would, while the next turn of a chat
    has only its new part tokenised."""
    llm = backend._llm
    tokenised: list[int] = []  # characters of each text llama.cpp was asked to tokenise
    real_tokenize = llm.tokenize

    def spy(text, add_bos=True, special=False):
        tokenised.append(len(text))
        return real_tokenize(text, add_bos=add_bos, special=special)

    convo = [M("system", "You are terse.")]
    prompts = []
    for i, (question, answer) in enumerate([
        ("Hello there!", "Hi. How can I help?"),
        (MIXED + " — translate?", "Bonjour 🌍 le monde\n\n  spaced   out  \n"),
        ("Text with <|im_end|> and <|im_start|>user inside it", "Odd, but fine."),
        ("trailing spaces   ", "   leading spaces"),
        ("Last one, " + "many words " * 60, "Done."),
    ]):
        convo = convo + [M("user", question)]
        prompts.append(backend.render(convo))
        convo = convo + [M("assistant", answer)]
    regenerated = backend.render(convo[:-2] + [M("user", "A different last question")])
    edited_system = backend.render([M("system", "You are verbose.")] + convo[1:])
    others = [regenerated, prompts[2], edited_system, backend.render([M("user", "Unrelated.")]), prompts[-1]]

    backend._last_prompt = None
    monkeypatch.setattr(llm, "tokenize", spy)
    for text in prompts + others:
        tokenised.clear()
        got = backend.tokenize_prompt(text)
        monkeypatch.setattr(llm, "tokenize", real_tokenize)
        assert got == full_tokens(backend, text), text
        monkeypatch.setattr(llm, "tokenize", spy)
    # The next turn: only its new part (from the last shared special token on) was tokenised.
    backend.tokenize_prompt(prompts[-2])
    tokenised.clear()
    backend.tokenize_prompt(prompts[-1])
    assert tokenised and sum(tokenised) < len(prompts[-1]) - len(prompts[-2]) + 40
    # The same text again costs no tokenisation at all.
    tokenised.clear()
    again = backend.tokenize_prompt(prompts[-1])
    assert tokenised == []
    assert again == full_tokens(backend, prompts[-1])


def test_tokenised_prefix_cache_with_bos_added(backend, monkeypatch):
    """With a model that adds BOS itself (Llama, Mistral) to a prompt that does not start with it,
    the tokens built from the cache keep exactly the one BOS a full tokenisation has."""
    llm = backend._llm
    bos = llm.token_bos()
    real_tokenize = llm.tokenize

    asked: list[int] = []

    def tokenize_adding_bos(text, add_bos=True, special=False):  # as llama.cpp does for such a model
        asked.append(len(text))
        return ([bos] if add_bos else []) + real_tokenize(text, add_bos=False, special=special)

    monkeypatch.setattr(llm._model, "add_bos_token", lambda: True)
    monkeypatch.setattr(llm, "tokenize", tokenize_adding_bos)
    backend._last_prompt = None
    turn1 = "Preamble.\n" + backend.render([M("user", "Hi")])
    turn2 = "Preamble.\n" + backend.render([M("user", "Hi"), M("assistant", "Hello!"), M("user", "More?")])
    assert not turn1.startswith(backend.info.bos_token)
    assert backend.tokenize_prompt(turn1) == full_tokens(backend, turn1)
    assert backend._last_prompt.bos_added
    asked.clear()
    ids = backend.tokenize_prompt(turn2)
    assert asked and asked[0] < len(turn2) - len(turn1) + 40  # only the new part was tokenised
    assert ids == full_tokens(backend, turn2) and ids[0] == bos and ids[1] != bos


def test_cjk_and_emoji_round_trip_through_real_tokens(backend):
    ids = backend._llm.tokenize(MIXED.encode(), add_bos=False, special=False)
    pieces = [backend._piece(t) for t in ids]
    # Some tokens hold only part of a character: decoding them alone would give U+FFFD.
    assert any(p.decode("utf-8", errors="replace") != p.decode("utf-8", errors="ignore") for p in pieces)
    stream = TextStream()
    shown = [stream.feed_bytes(p) for p in pieces] + [stream.flush()]
    assert "".join(shown) == MIXED
    assert not any("\ufffd" in s for s in shown)


def test_cjk_generation_has_no_replacement_chars(backend):
    msgs = [M("system", "Repeat the user's text exactly."), M("user", MIXED)]
    pieces, stats = run(backend, msgs, GenerationParams(max_tokens=60, temperature=0.0))
    text = "".join(pieces)
    print("CJK reply:", text)
    assert "\ufffd" not in text
    assert not any("\ufffd" in p for p in pieces)
    assert any(ord(c) > 0x2E80 for c in text)  # it did produce CJK or emoji


def test_seeded_sampling_is_reproducible(embedded_model_path):
    """The seed alone decides what is sampled: what the request before it sampled changes nothing.

    Both runs start from the same KV-cache state (a fresh model that answered the same other
    prompt first): llama.cpp promises the same floats only for the same cache state and batching,
    and on some CPUs a different one changes a near-tie."""
    msgs = [M("user", "Tell me a short story about a cat.")]
    params = GenerationParams(max_tokens=30, temperature=0.9, seed=1234)

    def story_after_another_request(seed: int) -> str:
        b = load_backend("llama", embedded_model_path)
        try:
            run(b, [M("user", "Something else entirely.")], GenerationParams(max_tokens=5, temperature=1.0, seed=seed))
            pieces, stats = run(b, msgs, params)
            assert stats.generated_tokens > 0
            return "".join(pieces)
        finally:
            b.close()

    assert story_after_another_request(1) == story_after_another_request(2)


def test_no_doubled_bos(backend, monkeypatch):
    # The embedded model does not add BOS itself; pretend it does, as Llama/Mistral GGUFs do, and
    # check that BOS is requested only when the rendered template does not already start with it.
    llm = backend._llm
    bos = backend.info.bos_token
    asked = []
    real_tokenize = llm.tokenize

    def spy(text, add_bos=True, special=False):
        asked.append((add_bos, special))
        return real_tokenize(text, add_bos=add_bos, special=special)

    monkeypatch.setattr(llm._model, "add_bos_token", lambda: True)
    monkeypatch.setattr(llm, "tokenize", spy)
    ids = backend.tokenize_prompt(bos + "hello")
    backend.tokenize_prompt("hello")
    assert asked == [(False, True), (True, True)]
    assert ids.count(llm.token_bos()) == 1


def test_long_conversation_drops_turns(embedded_model_path):
    from lmdesk.core.params import LoadOptions

    b = load_backend("llama", embedded_model_path, LoadOptions(n_ctx=512))
    try:
        history = [M("system", "Be brief.")]
        for i in range(12):
            history += [M("user", f"Question {i}: " + "tell me more " * 8), M("assistant", "Answer " * 20)]
        history.append(M("user", "Final question?"))
        pieces, stats = run(b, history, GenerationParams(max_tokens=16, temperature=0.0))
        assert stats.dropped_messages > 0
        assert stats.prompt_tokens <= 512 - 16
        with pytest.raises(ContextOverflowError, match="the conversation is"):
            run(b, history, GenerationParams(max_tokens=16, context_policy=ContextPolicy.ERROR))
        with pytest.raises(ContextOverflowError) as err:
            run(b, [M("user", "word " * 2000)], GenerationParams(max_tokens=16))
        assert "the model's context holds 512" in err.value.message and err.value.fix
        # Still works afterwards.
        _, stats = run(b, [M("user", "Hi")], GenerationParams(max_tokens=4))
        assert stats.generated_tokens > 0
    finally:
        b.close()


def test_generation_stops_when_context_is_full(embedded_model_path):
    from lmdesk.core.params import LoadOptions

    b = load_backend("llama", embedded_model_path, LoadOptions(n_ctx=256))
    try:
        assert b.context_length == 256
        numbers = ", ".join(str(i) for i in range(1, 35))
        _, stats = run(b, [M("user", f"Continue counting: {numbers},")],
                       GenerationParams(max_tokens=1000, temperature=0.0, repeat_penalty=1.0))
        assert stats.prompt_tokens + stats.generated_tokens <= b.context_length
        if stats.stop_reason == "length":
            assert stats.prompt_tokens + stats.generated_tokens >= b.context_length - 1
        else:
            assert stats.stop_reason == "stop"
    finally:
        b.close()


def test_closed_backend_raises(embedded_model_path):
    b = load_backend("llama", embedded_model_path)
    b.close()
    b.close()  # idempotent
    with pytest.raises(GenerationError, match="closed"):
        run(b, [M("user", "hi")])


class TestTextStream:
    """The incremental decoder and stop-string buffer on their own."""

    def test_bytes_one_at_a_time(self):
        stream = TextStream()
        data = MIXED.encode()
        shown = [stream.feed_bytes(data[i:i + 1]) for i in range(len(data))] + [stream.flush()]
        assert "".join(shown) == MIXED
        assert "\ufffd" not in "".join(shown)
        assert shown.count("") > 10  # partial characters were held back, not shown broken

    def test_a_character_cut_off_at_the_end_is_dropped_not_shown_broken(self):
        stream = TextStream()
        assert stream.feed_bytes(b"ok \xe4\xbd") == "ok "  # max tokens/Stop hit mid-character
        assert stream.flush() == ""

    def test_invalid_bytes_inside_the_stream_become_a_replacement(self):
        stream = TextStream()
        assert stream.feed_bytes(b"a\xffb") == "a\ufffdb"

    def test_stop_string_across_pieces(self):
        stream = TextStream(stop=("<END>",))
        assert stream.feed_text("Hello <E") == "Hello "
        assert stream.feed_text("N") == ""
        assert stream.feed_text("D> more") == ""
        assert stream.stopped and stream.flush() == ""

    def test_false_alarm_is_released(self):
        stream = TextStream(stop=("<END>",))
        assert stream.feed_text("a <E") == "a "
        assert stream.feed_text("xtra") == "<Extra"
        assert stream.flush() == ""


def test_load_reports_llama_cpp_progress_and_cancel_aborts_it(embedded_model_path):
    """Progress comes from llama.cpp's own callback; Cancel during the load stops it cleanly."""
    seen: list[float] = []
    backend = load(embedded_model_path, LoadOptions(n_ctx=512), seen.append, threading.Event())
    try:
        assert len(seen) >= 5 and seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 1.0
        assert any(0.1 < f < 1.0 for f in seen)  # values from inside llama.cpp's load, not just ours
    finally:
        backend.close()

    cancel = threading.Event()

    def cancel_midway(fraction: float) -> None:
        if fraction > 0.1:  # inside llama.cpp's tensor loading
            cancel.set()

    with pytest.raises(ModelLoadError, match="cancelled"):
        load(embedded_model_path, LoadOptions(n_ctx=512), cancel_midway, cancel)
    import llama_cpp.llama_cpp as lib

    assert lib.llama_model_default_params.__name__ == "llama_model_default_params"  # patch undone
    again = load(embedded_model_path, LoadOptions(n_ctx=512), lambda _f: None, threading.Event())
    try:
        assert "".join(p for p in again.generate([M("user", "Hi")], GenerationParams(max_tokens=4),
                                                  threading.Event()) if isinstance(p, str))
    finally:
        again.close()
