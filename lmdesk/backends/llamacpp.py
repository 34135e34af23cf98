"""The `llama` backend: GGUF models on CPU/GPU through llama-cpp-python.

It uses llama-cpp-python's Llama object for loading, tokenising, KV-cache bookkeeping (`eval`,
`input_ids`, `n_tokens`) and its sampler chain, but runs its own loop around them so that
(1) the prompt is evaluated in short slices with a cancel check between them, (2) only the suffix
that differs from what the KV cache already holds is evaluated, (3) a prompt that extends the
previous one (the next turn of a chat) has only its new part tokenised, and (4) text is decoded
incrementally (never U+FFFD for a split character).
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmdesk.backends.base import Capabilities, ProgressCallback
from lmdesk.backends.llamacpp_loading import (
    check_lora, install_log_callback, load_failure, load_progress, recent_errors, templates_left_uncompiled,
)
from lmdesk.core.modelfiles.chat_template import RenderCancelled, render_chat
from lmdesk.core.chat.context_window import fit_and_tokenize
from lmdesk.core.errors import ContextOverflowError, GenerationError, LmdeskError, ModelLoadError
from lmdesk.core.modelfiles.gguf_info import GGUFInfo, read_gguf_info
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions
from lmdesk.core.stats import GenerationStats
from lmdesk.core.text.stream import TextStream

log = logging.getLogger("lmdesk.backends.llama")

SLICE_TARGET_SECONDS = 0.15  # aim for this much work per prompt slice: Stop's worst-case delay
# The first slice of a fresh model is SLICE_MIN tokens: Stop is quick even before any slice was
# measured, and two fresh models batch the same prompt the same way; later slices follow the
# measured rate.
SLICE_MIN = 16


@dataclass(frozen=True)
class TokenizedPrompt:
    """A rendered prompt and its tokens; `add_bos`: BOS was asked for, `bos_added`: llama.cpp
    prepended it (the model's vocabulary wants one), so tokens[0] has no text in `text`."""

    text: str
    tokens: tuple[int, ...]
    add_bos: bool
    bos_added: bool


def shared_prefix_length(a: str, b: str) -> int:
    """Length of the longest common prefix of `a` and `b` (binary search over C comparisons)."""
    if b.startswith(a):
        return len(a)
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # the answer lies in [lo, hi]
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def next_slice_size(current: int, evaluated: int, seconds: float, n_batch: int) -> int:
    """The size of the next prompt slice, so that one takes ~SLICE_TARGET_SECONDS here.

    A slice smaller than planned (the prompt's last, or a single token) measures a lower rate than
    a full one would reach (each decode has a fixed cost): it may grow the size, never shrink it."""
    rate = evaluated / max(seconds, 1e-6)
    size = int(min(max(rate * SLICE_TARGET_SECONDS, SLICE_MIN), n_batch))
    if evaluated < current:
        size = max(size, min(current, n_batch))
    return size

def load(path: str, options: LoadOptions, progress: ProgressCallback, cancel: threading.Event) -> LlamaCppBackend:
    """Validate and load a GGUF model; ModelLoadError (never a crash) when it cannot be run."""
    progress(0.0)
    p = Path(path).expanduser()
    info = read_gguf_info(p)
    if options.lora_path:
        check_lora(Path(options.lora_path).expanduser())
    if cancel.is_set():
        raise ModelLoadError("loading was cancelled")
    progress(0.1)
    try:
        install_log_callback()
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelLoadError("llama-cpp-python is not installed", "pip install llama-cpp-python==0.3.36") from exc
    n_ctx = options.n_ctx if options.n_ctx > 0 else (info.context_length or 4096)
    if info.context_length:
        n_ctx = min(n_ctx, info.context_length)  # past the trained context a model produces garbage
    recent_errors.clear()
    try:
        with load_progress(progress, cancel), templates_left_uncompiled():
            llm = Llama(
                model_path=str(p),
                n_ctx=n_ctx,
                n_batch=min(options.n_batch, n_ctx),
                n_threads=options.n_threads,
                n_gpu_layers=options.n_gpu_layers,
                lora_path=str(Path(options.lora_path).expanduser()) if options.lora_path else None,
                verbose=False,
            )
    except Exception as exc:  # llama-cpp-python raises ValueError/RuntimeError; anything else too
        if cancel.is_set():
            raise ModelLoadError("loading was cancelled") from None
        log.info("llama.cpp failed to load %s: %s; log: %s", p, exc, list(recent_errors))
        raise load_failure(p, info, exc) from None
    if options.lora_path and not llm._lora_adapter:
        # llama-cpp-python 0.3.36 does not notice a NULL adapter: it would run without it.
        llm.close()
        cause = next((e for e in recent_errors if "lora" in e.lower()), "see the log")
        raise ModelLoadError(f"llama.cpp could not load the LoRA adapter {Path(options.lora_path).name}: {cause}",
                             "check that the adapter was made for this model")
    if cancel.is_set():
        llm.close()
        raise ModelLoadError("loading was cancelled")
    progress(1.0)
    return LlamaCppBackend(llm, info, options)


class LlamaCppBackend:
    """A loaded GGUF model that streams chat replies (see the module docstring)."""

    name = "llama"

    def __init__(self, llm, info: GGUFInfo, options: LoadOptions) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._llm = llm
        self.info = info
        self.model_path = info.path
        # llama.cpp may make a context other than the one asked for (it raises a small one to its
        # minimum): the one it made is the model's context length, and llama-cpp-python's token
        # bookkeeping, sized for the one asked for, must hold that many tokens.
        self.context_length = llm.n_ctx()
        if len(llm.input_ids) < self.context_length:
            ids = np.zeros(self.context_length, dtype=llm.input_ids.dtype)
            ids[: len(llm.input_ids)] = llm.input_ids
            llm.input_ids = ids
        gpu = options.n_gpu_layers != 0 and bool(llama_cpp.llama_supports_gpu_offload())
        self.device = "gpu" if gpu else "cpu"
        self.capabilities = Capabilities(
            streaming=True, cancel_during_prompt=True, prefix_cache=True, gpu=gpu, lora=True
        )
        self._vocab = llm._model.vocab
        self._piece_cache: dict[int, bytes] = {}
        self._piece_buf = ctypes.create_string_buffer(256)
        self._slice = SLICE_MIN  # grows from the measured rate
        self._last_prompt: TokenizedPrompt | None = None
        self._control: dict[int, str] = {}  # token id -> its text if it is a control token, else ""
        self._longest_piece: int | None = None  # bytes of text of the vocabulary's longest token
        self._closed = False

    # ------------------------------------------------------------ prompt text and tokens

    def render(self, messages: Sequence[ChatMessage], cancel: threading.Event | None = None) -> str:
        """The prompt text: the model's chat template (ChatML if it has none) with the reply prompt.

        The template is untrusted: it renders under a time limit and stops when `cancel` is set."""
        return render_chat(messages, self.info.chat_template, self.info.bos_token, self.info.eos_token, cancel=cancel)

    def tokenize_prompt(self, text: str) -> list[int]:
        """Tokens of a rendered prompt: special tokens parsed, BOS added once at most.

        The next turn of a conversation renders to the previous prompt plus a few lines, so only
        the part from the last special token the two share is tokenised again (see
        `_tokenize_extension`); the result is the same as tokenising the whole text."""
        last = self._last_prompt
        if last is not None and last.text == text:
            # generate() tokenises the prompt the context policy just counted.
            return list(last.tokens)
        add_bos = bool(self._llm._model.add_bos_token())
        bos = self.info.bos_token
        if add_bos and bos and text.startswith(bos):
            add_bos = False  # the template already wrote BOS; a second one degrades replies
        tokens = self._tokenize_extension(last, text, add_bos) if last is not None else None
        if tokens is None:
            tokens = self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        bos_added = add_bos and bool(tokens) and tokens[0] == self._llm.token_bos()
        self._last_prompt = TokenizedPrompt(text, tuple(tokens), add_bos, bos_added)
        return tokens

    def _tokenize_extension(self, last: TokenizedPrompt, text: str, add_bos: bool) -> list[int] | None:
        """Tokens of `text` from those of the previous prompt `last`, tokenising only its new part.

        llama.cpp first splits a text at its special tokens (`<|im_start|>`, …) and tokenises the
        plain text between them piece by piece, so the tokens before a special token do not depend
        on anything after it. The cut is the last special token of `last` that lies wholly in the
        text both prompts share: its tokens up to there are kept, and `text` from there on is
        tokenised. None when there is no such cut (then the whole text is tokenised)."""
        if add_bos != last.add_bos:
            return None
        shared = shared_prefix_length(last.text, text)
        cut = self._special_cut(last, shared)
        if cut is None:
            return None
        k, pos = cut
        tail = self._llm.tokenize(text[pos:].encode("utf-8"), add_bos=False, special=True)
        if not tail or tail[0] != last.tokens[k]:
            return None  # the special token did not come out first: do not guess
        return list(last.tokens[:k]) + tail

    def _special_cut(self, last: TokenizedPrompt, shared: int) -> tuple[int, int] | None:
        """(token index, text offset) of the last special token of `last` that ends within the
        first `shared` characters of its text; None if there is none (or text and tokens disagree).

        Special tokens and their texts are paired from the end: the r-th last occurrence of a
        token id is the r-th last occurrence of its text."""
        tokens, text = last.tokens, last.text
        first = 1 if last.bos_added else 0  # a BOS that was added has no text
        search_end: dict[int, int] = {}
        for k in range(len(tokens) - 1, first, -1):  # index `first` itself: nothing to keep before it
            special = self._special_text(tokens[k])
            if not special:
                continue
            pos = text.rfind(special, 0, search_end.get(tokens[k], len(text)))
            if pos < 0:
                return None
            search_end[tokens[k]] = pos
            if pos + len(special) <= shared:
                occurrences = tokens.count(tokens[k]) - (1 if first and tokens[0] == tokens[k] else 0)
                if pos == 0 or text.count(special) != occurrences:
                    return None  # e.g. its text also occurs inside another special token
                return k, pos
        return None

    def _special_text(self, token: int) -> str:
        """The text of a control token (`<|im_start|>`), "" for any other token."""
        special = self._control.get(token)
        if special is None:
            special = ""
            if self._lib.llama_vocab_is_control(self._vocab, token):
                buf = ctypes.create_string_buffer(128)
                n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, True)
                if 0 < n <= len(buf):
                    special = buf[:n].decode("utf-8", errors="replace")
            self._control[token] = special
        return special

    def longest_piece(self) -> int:
        """Bytes of text of the vocabulary's longest token (special tokens included): no token
        covers more, so a text of B bytes takes at least B / longest_piece() tokens."""
        if self._longest_piece is None:
            buf = ctypes.create_string_buffer(256)
            longest = 1
            for token in range(self._lib.llama_vocab_n_tokens(self._vocab)):
                n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, True)
                longest = max(longest, abs(n))  # negative: the size a larger buffer would need
            self._longest_piece = longest
        return self._longest_piece

    def min_tokens(self, text: str, n_ctx: int) -> int:
        """A lower bound on the tokens of `text`, found without tokenising it: 0 for a text whose
        bytes could fit `n_ctx` tokens (tokenising that is quick), else its bytes divided by the
        longest token's. Any text it reports as longer than the context truly is."""
        if len(text) <= n_ctx:  # each character is at least one byte
            return 0
        size = len(text.encode("utf-8", errors="surrogatepass"))
        if size <= n_ctx * 8:
            return 0
        return -(-size // self.longest_piece())

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens the rendered prompt for `messages` takes (with the generation prompt)."""
        self._check_open()
        return len(self.tokenize_prompt(self.render(messages)))

    def _piece(self, token: int) -> bytes:
        piece = self._piece_cache.get(token)
        if piece is None:
            buf = self._piece_buf
            n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
            if n < 0:  # buffer too small: -n is the size needed
                buf = ctypes.create_string_buffer(-n)
                n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
            piece = self._piece_cache[token] = bytes(buf[:n])
        return piece

    # ------------------------------------------------------------ KV cache

    def _reuse_prefix(self, tokens: list[int]) -> int:
        """Keep the longest prefix of `tokens` already in the KV cache; return its length."""
        llm = self._llm
        m = min(llm.n_tokens, len(tokens))
        diff = np.nonzero(llm.input_ids[:m] != np.asarray(tokens[:m], dtype=llm.input_ids.dtype))[0]
        common = int(diff[0]) if len(diff) else m
        if common == len(tokens):
            common -= 1  # the last prompt token must be evaluated again: sampling reads its logits
        if common < llm.n_tokens:
            if common > 0 and llm._ctx.kv_cache_seq_rm(-1, common, -1):
                llm.n_tokens = common
            else:  # e.g. recurrent models cannot drop part of their state
                llm.reset()
                common = 0
        return common

    def _eval_prompt(self, tokens: list[int], cancel: threading.Event) -> int:
        """Evaluate `tokens` in slices, checking `cancel` between them; return how many were done."""
        done, total = 0, len(tokens)
        n_batch = self._llm.n_batch
        while done < total:
            if cancel.is_set():
                break
            size = self._slice
            if total - done - size < SLICE_MIN:
                size = min(total - done, n_batch)  # a scrap of a slice rides along with the last one
            chunk = tokens[done:done + size]
            t = time.perf_counter()
            self._llm.eval(chunk)  # updates n_tokens/input_ids per decoded batch: stays consistent
            done += len(chunk)
            self._slice = next_slice_size(self._slice, len(chunk), time.perf_counter() - t, n_batch)
        return done

    def _make_sampler(self, params: GenerationParams):
        llm = self._llm
        llm.set_seed(params.seed if params.seed is not None else self._lib.LLAMA_DEFAULT_SEED)
        # The same sampler chain llama-cpp-python's own generate() builds (penalties, top-k,
        # typical, top-p, min-p, temperature, dist; greedy at temperature 0).
        return llm._init_sampler(
            top_k=params.top_k, top_p=params.top_p, min_p=params.min_p,
            temp=max(0.0, params.temperature), repeat_penalty=params.repeat_penalty,
        )

    # ------------------------------------------------------------ generation

    def generate(
        self, messages: Sequence[ChatMessage], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str | GenerationStats]:
        """Yield text pieces, then one GenerationStats. Checks `cancel` between tokens and slices."""
        self._check_open()
        start = time.perf_counter()
        n_ctx = self.context_length
        rendered: dict[tuple[ChatMessage, ...], str] = {}

        def text_of(msgs: Sequence[ChatMessage]) -> str:
            key = tuple(msgs)  # the context policy counts, then tokenises, the same messages
            text = rendered.get(key)
            if text is None:
                text = rendered[key] = self.render(msgs, cancel)
            if cancel.is_set():
                raise RenderCancelled("the request was cancelled")
            return text

        def tokenize(msgs: Sequence[ChatMessage]) -> list[int]:
            return self.tokenize_prompt(text_of(msgs))

        def count(msgs: Sequence[ChatMessage]) -> int:
            # A text that cannot fit is not tokenised at all (that could take minutes): any count
            # above the context tells the context policy as much.
            text = text_of(msgs)
            bound = self.min_tokens(text, n_ctx)
            return bound if bound >= n_ctx else len(self.tokenize_prompt(text))

        # The messages the context policy never drops must fit by themselves: say so before any work.
        kept = [m for m in messages[:-1] if m.role == "system"] + list(messages[-1:])
        least = self.min_tokens("".join(m.content for m in kept), n_ctx)
        if least >= n_ctx:
            raise ContextOverflowError(
                f"the prompt is at least {least:,} tokens but the model's context holds {n_ctx:,}",
                "shorten it, or raise the context size",
            )
        try:
            tokens, dropped = fit_and_tokenize(messages, count, tokenize, n_ctx, params)
        except RenderCancelled:
            yield GenerationStats(stop_reason="cancelled")
            return
        except LmdeskError:
            raise
        except Exception as exc:
            raise GenerationError(f"could not prepare the prompt: {exc}") from exc
        if not tokens:  # llama.cpp aborts the whole process on a prompt without tokens
            raise GenerationError("the model's chat template produced no prompt",
                                  "choose another model, or report the broken template to its publisher")
        stats = GenerationStats(stop_reason="stop", prompt_tokens=len(tokens), dropped_messages=dropped)
        try:
            yield from self._run(tokens, params, cancel, stats, start)
        except LmdeskError:
            raise
        except Exception as exc:
            log.warning("generation failed", exc_info=True)
            raise GenerationError(f"llama.cpp failed while generating: {exc}") from None

    def _run(self, tokens: list[int], params: GenerationParams, cancel: threading.Event,
             stats: GenerationStats, start: float) -> Iterator[str | GenerationStats]:
        llm = self._llm
        reused = self._reuse_prefix(tokens)
        stats.prompt_tokens_evaluated = self._eval_prompt(tokens[reused:], cancel)
        if stats.prompt_tokens_evaluated < len(tokens) - reused:
            stats.stop_reason = "cancelled"
            yield stats
            return
        sampler = self._make_sampler(params)
        stream = TextStream(params.stop)
        first: float | None = None
        n_ctx, ctx = self.context_length, llm._ctx
        is_eog, vocab = self._lib.llama_vocab_is_eog, self._vocab
        reason = "length"
        while stats.generated_tokens < params.max_tokens:
            if cancel.is_set():
                reason = "cancelled"
                break
            if llm.n_tokens >= n_ctx:
                break  # the context is full: "length"
            token = sampler.sample(ctx, -1)
            if is_eog(vocab, token):
                reason = "stop"
                break
            stats.generated_tokens += 1
            text = stream.feed_bytes(self._piece(token))
            if text:
                if first is None:
                    first = time.perf_counter()
                    stats.time_to_first_token = first - start
                yield text
            if stream.stopped:
                reason = "stop"
                break
            if stats.generated_tokens < params.max_tokens:
                llm.eval([token])  # evaluated lazily: a token never fed back costs nothing
        tail = stream.flush()
        if tail:
            if first is None:
                first = time.perf_counter()
                stats.time_to_first_token = first - start
            yield tail
        stats.stop_reason = reason
        stats.generation_seconds = 0.0 if first is None else time.perf_counter() - first
        yield stats

    # ------------------------------------------------------------ lifecycle

    def _check_open(self) -> None:
        if self._closed:
            raise GenerationError("the model was closed", "load a model again")

    def close(self) -> None:
        """Free the model's memory. The backend is unusable afterwards."""
        if not self._closed:
            self._closed = True
            try:
                self._llm.close()
            except Exception:  # freeing must never raise into the engine's shutdown path
                log.debug("closing llama.cpp model failed", exc_info=True)
