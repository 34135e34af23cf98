"""The llama backend on the real embedded model: streaming, cancel (during prompt and generation),
prefix reuse, UTF-8 safety, the context policy, stop reasons and reproducible sampling."""

from __future__ import annotations

import threading
import time

import pytest

from lmdesk.backends import load_backend
from lmdesk.backends.base import Backend
from lmdesk.backends.llamacpp import load
from lmdesk.core.errors import ContextOverflowError, GenerationError, ModelLoadError
from lmdesk.core.messages import ChatMessage as M
from lmdesk.core.params import ContextPolicy, GenerationParams, LoadOptions
from lmdesk.core.stats import GenerationStats
from lmdesk.core.textstream import TextStream

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


def test_cancel_during_long_prompt_then_next_request_works(backend):
    msgs = [M("user", long_prompt())]
    assert backend.count_tokens(msgs) >= 2000
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    t0 = time.perf_counter()
    timer.start()
    try:
        pieces, stats = run(backend, msgs, GenerationParams(max_tokens=20), cancel)
    finally:
        timer.cancel()
        timer.join()
    elapsed = time.perf_counter() - t0
    print(f"cancelled during prompt after {elapsed:.2f} s; evaluated {stats.prompt_tokens_evaluated}"
          f" of {stats.prompt_tokens}")
    assert stats.stop_reason == "cancelled" and pieces == []
    assert stats.prompt_tokens >= 2000
    assert stats.prompt_tokens_evaluated < stats.prompt_tokens
    assert elapsed < 5  # generous: the whole prompt takes ~10 s on 2 cores
    # The KV cache holds exactly the tokens that were evaluated, a prefix of this prompt.
    llm = backend._llm
    prompt_ids = backend.tokenize_prompt(backend.render(msgs))
    assert 0 < llm.n_tokens < len(prompt_ids)
    assert list(llm.input_ids[: llm.n_tokens]) == prompt_ids[: llm.n_tokens]
    # And the next request works normally.
    pieces, stats = run(backend, [M("user", "Say hi.")])
    assert stats.stop_reason in ("stop", "length") and "".join(pieces).strip()


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


def test_seeded_sampling_is_reproducible(backend):
    msgs = [M("user", "Tell me a short story about a cat.")]
    params = GenerationParams(max_tokens=30, temperature=0.9, seed=1234)
    first, _ = run(backend, msgs, params)
    run(backend, [M("user", "Something else entirely.")], GenerationParams(max_tokens=5, temperature=1.0))
    second, _ = run(backend, msgs, params)
    assert "".join(first) == "".join(second)


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
