"""The torch backend's generation mechanics on a tiny random Llama built in the test (CPU, fast)."""

from __future__ import annotations

import threading

import pytest
import torch

from lmdesk.backends import load_backend
from lmdesk.backends.base import Backend
from lmdesk.core.errors import ContextOverflowError, GenerationError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import ContextPolicy, GenerationParams, LoadOptions
from lmdesk.core.stats import GenerationStats
from tests.hf_models import build_tiny_llama

GREEDY = GenerationParams(max_tokens=24, temperature=0.0, repeat_penalty=1.0)
HELLO = [ChatMessage("system", "You are brief."), ChatMessage("user", "Hello, how are you today?")]
LONG = [ChatMessage("user", "The capital of France is Paris. " * 40)]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    return str(build_tiny_llama(tmp_path_factory.mktemp("tiny-llama")))


@pytest.fixture
def backend(tiny_model):
    b = load_backend("torch", tiny_model)
    yield b
    b.close()


def run(backend, messages, params, cancel=None) -> tuple[list[str], GenerationStats]:
    items = list(backend.generate(messages, params, cancel or threading.Event()))
    assert isinstance(items[-1], GenerationStats)
    assert all(isinstance(x, str) for x in items[:-1])
    return items[:-1], items[-1]


def reference(backend, messages, max_new: int, **kwargs) -> str:
    """transformers' own generate on the same prompt (no lmdesk code in the loop)."""
    ids = backend.prompt_ids(messages)
    with torch.inference_mode():
        out = backend.model.generate(
            torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_new, pad_token_id=backend.tokenizer.pad_token_id, **kwargs,
        )
    return backend.tokenizer.decode(out[0][len(ids):], skip_special_tokens=True)


def test_backend_shape(backend, tiny_model):
    assert isinstance(backend, Backend)
    assert backend.name == "torch" and backend.device == "cpu" and backend.dtype == "float32"
    assert backend.model_path == tiny_model
    assert backend.context_length == 1024  # LoadOptions' 4096 capped by max_position_embeddings
    assert backend.capabilities.lora and backend.capabilities.cancel_during_prompt


def test_streams_pieces_then_stats_matching_transformers(backend):
    pieces, stats = run(backend, HELLO, GREEDY)
    assert len(pieces) > 3, "text must arrive in several pieces, not at the end"
    assert "".join(pieces) == reference(backend, HELLO, GREEDY.max_tokens, do_sample=False)
    assert stats.prompt_tokens == stats.prompt_tokens_evaluated == backend.count_tokens(HELLO)
    assert stats.generated_tokens == GREEDY.max_tokens and stats.stop_reason == "length"
    assert stats.time_to_first_token is not None and stats.time_to_first_token > 0
    assert stats.generation_seconds > 0 and stats.tokens_per_second > 0


def test_count_tokens_is_the_chat_template(backend):
    ids = backend.tokenizer.apply_chat_template(
        [m.as_dict() for m in HELLO], add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    assert backend.count_tokens(HELLO) == len(ids)
    text = backend.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\nYou are brief.<|im_end|>") and text.endswith("<|im_start|>assistant\n")


def test_sliced_prefill_gives_the_same_reply(backend, monkeypatch):
    """Long prompts are pre-filled in slices (for Stop); the reply must equal one-pass generate."""
    import lmdesk.backends.hf as hf

    monkeypatch.setattr(hf, "SLICE_START", 16)
    backend._slice = 16
    assert backend.count_tokens(LONG) > hf.PREFILL_MIN_TOKENS
    sliced, stats = run(backend, LONG, GREEDY)
    monkeypatch.setattr(hf, "PREFILL_MIN_TOKENS", 10**9)
    whole, _ = run(backend, LONG, GREEDY)
    assert "".join(sliced) == "".join(whole) == reference(backend, LONG, GREEDY.max_tokens, do_sample=False)
    assert stats.prompt_tokens_evaluated == stats.prompt_tokens


def test_cancel_between_tokens(backend):
    cancel = threading.Event()
    pieces: list[str] = []
    stats = None
    for item in backend.generate(HELLO, GenerationParams(max_tokens=400, temperature=0), cancel):
        if isinstance(item, GenerationStats):
            stats = item
        else:
            pieces.append(item)
            cancel.set()
    assert stats is not None and stats.stop_reason == "cancelled"
    assert 1 <= stats.generated_tokens < 20
    assert backend._thread is None  # the generate thread was joined


class _SetAfter(threading.Event):
    """An Event that reads as set from its n-th check on: cancel lands mid-way, deterministically."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def is_set(self) -> bool:
        self.n -= 1
        return self.n < 0 or super().is_set()


def test_cancel_during_prompt_prefill(backend, monkeypatch):
    import lmdesk.backends.hf as hf

    monkeypatch.setattr(hf, "SLICE_MAX", 16)
    backend._slice = 16
    pieces, stats = run(backend, LONG, GREEDY, cancel=_SetAfter(3))
    assert pieces == [] and stats.stop_reason == "cancelled" and stats.generated_tokens == 0
    assert 0 < stats.prompt_tokens_evaluated < stats.prompt_tokens


def test_closing_the_generator_early_joins_the_thread(backend):
    gen = backend.generate(HELLO, GenerationParams(max_tokens=400, temperature=0), threading.Event())
    assert isinstance(next(gen), str)
    gen.close()  # what the engine does when it stops consuming
    assert backend._thread is None
    assert not [t for t in threading.enumerate() if t.name == "lmdesk-hf-generate"]


def test_max_tokens_and_stop_strings(backend):
    pieces, stats = run(backend, HELLO, GenerationParams(max_tokens=5, temperature=0))
    assert stats.generated_tokens == 5 and stats.stop_reason == "length"
    full = "".join(run(backend, HELLO, GREEDY)[0])
    stop = full[6:9]
    assert stop.strip(), full
    cut, stats = run(backend, HELLO, GenerationParams(max_tokens=24, temperature=0, repeat_penalty=1.0, stop=(stop,)))
    assert "".join(cut) == full[: full.find(stop)]
    assert stats.stop_reason == "stop"


def test_seed_makes_sampling_reproducible(backend):
    p = GenerationParams(max_tokens=16, temperature=1.5, top_k=0, top_p=1.0, min_p=0.0, seed=11)
    a = "".join(run(backend, HELLO, p)[0])
    b = "".join(run(backend, HELLO, p)[0])
    others = {"".join(run(backend, HELLO, GenerationParams(**{**p.__dict__, "seed": s}))[0]) for s in (12, 13, 14)}
    assert a == b
    assert others - {a}, "different seeds should give a different sample"


def test_top_k_1_is_greedy_and_sampling_matches_transformers(backend):
    greedy = "".join(run(backend, HELLO, GREEDY)[0])
    top1 = GenerationParams(max_tokens=24, temperature=0.9, top_k=1, top_p=0.9, min_p=0.1, repeat_penalty=1.0, seed=5)
    assert "".join(run(backend, HELLO, top1)[0]) == greedy
    # With only temperature in play both orders agree: compare with transformers' own sampling.
    p = GenerationParams(max_tokens=16, temperature=0.7, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0, seed=3)
    ours = "".join(run(backend, HELLO, p)[0])
    torch.manual_seed(3)
    assert ours == reference(backend, HELLO, 16, do_sample=True, temperature=0.7, top_k=0, top_p=1.0)


def test_repeat_penalty_matches_llama_cpp_window(backend):
    """Greedy with a strong penalty differs from plain greedy and equals transformers' penalty on
    the last 64 tokens (the prompt here is shorter, so the window covers all of it)."""
    short = [ChatMessage("user", "Hello, how are you today?")]
    p = GenerationParams(max_tokens=16, temperature=0, repeat_penalty=1.8)
    assert backend.count_tokens(short) + 16 <= 64
    penalised = "".join(run(backend, short, p)[0])
    assert penalised != "".join(run(backend, short, GenerationParams(max_tokens=16, temperature=0, repeat_penalty=1.0))[0])
    assert penalised == reference(backend, short, 16, do_sample=False, repetition_penalty=1.8)


def test_repeat_penalty_window_and_sampling_order():
    from lmdesk.backends.hf_generate import WindowedRepetitionPenalty, sampling_plan

    scores = torch.tensor([[2.0, -2.0, 2.0, 1.0]])
    ids = torch.tensor([[2, 0, 1, 3]])  # token 2 is outside a window of the last 3
    out = WindowedRepetitionPenalty(2.0, last_n=3)(ids, scores.clone())
    assert out.tolist() == [[1.0, -4.0, 2.0, 0.5]]

    names = [type(p).__name__ for p in sampling_plan(GenerationParams(temperature=0.5, repeat_penalty=1.1)).processors]
    assert names == ["WindowedRepetitionPenalty", "TopKLogitsWarper", "TopPLogitsWarper", "MinPLogitsWarper",
                     "TemperatureLogitsWarper"]  # llama.cpp's order: temperature last
    greedy = sampling_plan(GenerationParams(temperature=0, repeat_penalty=1.0))
    assert not greedy.do_sample and len(greedy.processors) == 0
    neutral = sampling_plan(GenerationParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0))
    assert neutral.do_sample and len(neutral.processors) == 0


def test_context_policy(tiny_model):
    b = load_backend("torch", tiny_model, LoadOptions(n_ctx=128))
    try:
        history = [ChatMessage("user" if i % 2 == 0 else "assistant", "Hello, how are you today? " * 3) for i in range(9)]
        _, stats = run(b, history, GenerationParams(max_tokens=8, temperature=0))
        assert stats.dropped_messages > 0 and stats.prompt_tokens <= 128
        with pytest.raises(ContextOverflowError):
            list(b.generate(history, GenerationParams(max_tokens=8, context_policy=ContextPolicy.ERROR), threading.Event()))
        with pytest.raises(ContextOverflowError):
            list(b.generate(LONG, GenerationParams(max_tokens=8), threading.Event()))
    finally:
        b.close()


def test_generate_errors_are_forwarded(backend, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(backend.model, "generate", boom)
    with pytest.raises(GenerationError, match="kernel exploded"):
        list(backend.generate(HELLO, GREEDY, threading.Event()))

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(backend.model, "generate", oom)
    with pytest.raises(GenerationError, match="out of memory"):
        list(backend.generate(HELLO, GREEDY, threading.Event()))
    assert backend._thread is None


def test_close_stops_a_running_generation(backend):
    cancel = threading.Event()
    gen = backend.generate(HELLO, GenerationParams(max_tokens=1000, temperature=0), cancel)
    next(gen)
    closer = threading.Thread(target=backend.close, name="test-closer")
    closer.start()
    rest = list(gen)
    closer.join(10)
    assert not closer.is_alive()
    assert isinstance(rest[-1], GenerationStats) and rest[-1].generated_tokens < 1000
    with pytest.raises(GenerationError, match="closed"):
        list(backend.generate(HELLO, GREEDY, threading.Event()))


def test_dtype_override_on_cpu(tiny_model):
    b = load_backend("torch", tiny_model, LoadOptions(dtype="bf16"))
    try:
        assert b.dtype == "bfloat16" and next(b.model.parameters()).dtype == torch.bfloat16
        pieces, stats = run(b, HELLO, GenerationParams(max_tokens=4, temperature=0))
        assert stats.generated_tokens == 4
    finally:
        b.close()


def test_through_the_engine(tiny_model):
    from lmdesk.engine.engine import Engine

    with Engine() as engine:
        model = engine.load("torch", tiny_model).result(60)
        job = engine.generate(HELLO, GenerationParams(max_tokens=8, temperature=0))
        streamed = "".join(job)
        reply = job.result(60)
    assert model.device == "cpu" and model.backend == "torch"
    assert reply.stats.generated_tokens == 8 and streamed and reply.text == streamed
