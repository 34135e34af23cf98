"""Pieces of the torch backend's generation loop: sampling that matches llama.cpp, the streamer and
the cancel criterion. Imported only by lmdesk.backends.hf (it imports torch)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    MinPLogitsWarper,
    StoppingCriteria,
    TemperatureLogitsWarper,
    TextIteratorStreamer,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from lmdesk.core.params import GenerationParams

# llama-cpp-python penalises tokens among the last 64 (its `last_n_tokens_size`), not the whole text.
REPEAT_LAST_N = 64


class WindowedRepetitionPenalty(LogitsProcessor):
    """llama.cpp's repeat penalty: divide positive / multiply negative logits of recent tokens."""

    def __init__(self, penalty: float, last_n: int = REPEAT_LAST_N) -> None:
        self.penalty = float(penalty)
        self.last_n = last_n

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        recent = input_ids[:, -self.last_n:]
        picked = torch.gather(scores, 1, recent)
        picked = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
        return scores.scatter(1, recent, picked)


@dataclass
class SamplingPlan:
    """How GenerationParams become `generate()` arguments."""

    do_sample: bool
    processors: LogitsProcessorList
    seed: int | None


def sampling_plan(params: GenerationParams) -> SamplingPlan:
    """Map GenerationParams onto transformers in llama.cpp's order.

    llama-cpp-python samples with penalties → top-k → top-p → min-p → temperature → draw, while
    transformers' built-in warpers apply temperature first (which changes what top-p and min-p
    keep). So we switch the built-ins off and pass our own list in llama.cpp's order; neutral
    values (top_k 0, top_p 1, min_p 0, penalty 1) add nothing, as in llama.cpp.
    """
    procs = LogitsProcessorList()
    if params.repeat_penalty and params.repeat_penalty != 1.0:
        procs.append(WindowedRepetitionPenalty(params.repeat_penalty))
    if params.temperature <= 0:  # llama.cpp: temperature 0 → greedy; penalties still apply
        return SamplingPlan(False, procs, params.seed)
    if params.top_k and params.top_k > 0:
        procs.append(TopKLogitsWarper(top_k=int(params.top_k)))
    if params.top_p is not None and params.top_p < 1.0:
        procs.append(TopPLogitsWarper(top_p=float(params.top_p)))
    if params.min_p and params.min_p > 0:
        procs.append(MinPLogitsWarper(min_p=float(params.min_p)))
    if params.temperature != 1.0:
        procs.append(TemperatureLogitsWarper(float(params.temperature)))
    return SamplingPlan(True, procs, params.seed)


def neutral_generation_kwargs(plan: SamplingPlan) -> dict:
    """Switch off every built-in warper so a model's generation_config.json cannot add its own."""
    kwargs = {
        "do_sample": plan.do_sample,
        "temperature": 1.0,
        "top_p": 1.0,
        "typical_p": 1.0,
        "repetition_penalty": 1.0,
        "no_repeat_ngram_size": 0,
    }
    if plan.do_sample:
        # top_k 0 switches transformers' TopK off (greedy ignores warpers, and would warn about it).
        kwargs.update(top_k=0, min_p=None)
    return kwargs


class CancelCriteria(StoppingCriteria):
    """Stops `generate` at the next token once any of the given events is set."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        stop = any(e.is_set() for e in self.events)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class TokenStreamer(TextIteratorStreamer):
    """A TextIteratorStreamer that emits text per token (not per word) and counts tokens.

    The stock streamer holds text back until a space, which delays the first visible piece; we only
    hold back an incomplete UTF-8 character (decoded as U+FFFD), which the next token completes.
    """

    def __init__(self, tokenizer, eos_ids: set[int], timeout: float) -> None:
        super().__init__(tokenizer, skip_prompt=True, timeout=timeout, skip_special_tokens=True)
        self.eos_ids = eos_ids
        self.generated = 0  # new tokens, an end-of-sequence token not counted (as llama.cpp counts)
        self.saw_eos = False
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None

    def put(self, value) -> None:
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        ids = value.reshape(-1).tolist()
        now = time.perf_counter()
        if self.first_token_at is None:
            self.first_token_at = now
        self.last_token_at = now
        for tok in ids:
            if tok in self.eos_ids:
                self.saw_eos = True
            else:
                self.generated += 1
        self.token_cache.extend(ids)
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if text.endswith("\ufffd"):
            return
        piece = text[self.print_len:]
        if text.endswith("\n"):  # restart the cache so decoding stays O(line), as the parent does
            self.token_cache = []
            self.print_len = 0
        else:
            self.print_len += len(piece)
        if piece:
            self.on_finalized_text(piece)
