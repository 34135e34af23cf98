"""Engine benchmark on the embedded model: lmdesk's worker + bridge (with a running Qt event loop)
against a raw llama-cpp-python streaming loop, interleaved in one run so machine noise hits both.

Prints and saves (bench/results/engine.json):
  * decode tok/s of each and the ratio lmdesk / raw            (goal ≥ 0.97)
  * Stop latency during prompt evaluation and during generation (goal < 0.3 s)
  * second-turn time to first token with a 1,500-token history, ÷ what raw llama.cpp needs to
    evaluate the same new tokens on the same cached context and sample the first token (goal ≤ 1.1);
    also ÷ the time to first token with an empty history, for scale

Run: make bench   (or: QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_engine.py --runs 7)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from llama_cpp import Llama  # noqa: E402
from PySide6.QtCore import QCoreApplication, QTimer  # noqa: E402
from qt_wait import wait_for  # noqa: E402  (bench/ is on sys.path when run as a script)

from lmdesk.core.messages import ChatMessage  # noqa: E402
from lmdesk.core.modelfiles.chat_template import render_chat  # noqa: E402
from lmdesk.core.modelfiles.discovery import embedded_model_path  # noqa: E402
from lmdesk.core.modelfiles.gguf_info import read_gguf_info  # noqa: E402
from lmdesk.core.params import GenerationParams, LoadOptions  # noqa: E402
from lmdesk.engine.bridge import EngineBridge, QtJob  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
N_CTX = 4096
RESULTS = Path(__file__).resolve().parent / "results" / "engine.json"


class Run:
    """One generation job's signals as the GUI sees them, with their arrival times."""

    def __init__(self, bridge: EngineBridge) -> None:
        self.bridge = bridge
        self.job: QtJob | None = None
        self.t_submit = self.t_first = self.t_last = self.t_done = self.t_cancel = 0.0
        self.text = ""
        self.stats = None
        self.error: str | None = None

    def start(self, messages, params) -> Run:
        self.t_submit = time.perf_counter()
        job = self.job = self.bridge.generate(messages, params)
        job.sig_text.connect(self._text)
        job.sig_finished.connect(self._ended)
        job.sig_cancelled.connect(self._ended)
        job.sig_failed.connect(self._failed)
        return self

    def cancel(self) -> None:
        self.t_cancel = time.perf_counter()
        self.job.cancel()

    def _text(self, text: str) -> None:
        now = time.perf_counter()
        self.t_first = self.t_first or now
        self.t_last = now
        self.text += text

    def _ended(self, stats) -> None:
        self.t_done, self.stats = time.perf_counter(), stats

    def _failed(self, message: str) -> None:
        self.t_done, self.error = time.perf_counter(), message

    @property
    def done(self) -> bool:
        return bool(self.t_done)

    def wait(self) -> Run:
        wait_for(lambda: self.done)
        if self.error:
            raise SystemExit(f"lmdesk run failed: {self.error}")
        return self


def raw_run(llm: Llama, messages: list[dict], max_tokens: int) -> dict:
    """The reference: llama-cpp-python's own streaming chat completion, greedy."""
    t0 = time.perf_counter()
    first = last = 0.0
    text = ""
    for chunk in llm.create_chat_completion(messages, stream=True, max_tokens=max_tokens, temperature=0.0):
        piece = chunk["choices"][0]["delta"].get("content")
        if piece:
            now = time.perf_counter()
            first = first or now
            last = now
            text += piece
    return {"ttft": first - t0, "decode_seconds": last - first, "text": text}


class RawTurn:
    """Raw llama-cpp-python holding a conversation's tokens in its KV cache, as a chat app would.

    `evaluate_new(tokens, n_new)` first makes the cache hold exactly `tokens[:-n_new]` (reusing
    what it already holds, evaluating the rest untimed), then times what the second turn really
    costs: evaluating the last `n_new` tokens in one batch and sampling the first reply token."""

    def __init__(self, llm: Llama, model: str) -> None:
        self.llm = llm
        info = read_gguf_info(model)
        self.template, self.bos, self.eos = info.chat_template, info.bos_token, info.eos_token
        self.add_bos = bool(llm._model.add_bos_token())

    def tokens(self, messages: list[ChatMessage]) -> list[int]:
        """The prompt tokens of `messages`, rendered and tokenised as lmdesk does."""
        text = render_chat(messages, self.template, self.bos, self.eos)
        add_bos = self.add_bos and not (self.bos and text.startswith(self.bos))
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def evaluate_new(self, tokens: list[int], n_new: int) -> float:
        llm = self.llm
        cached = tokens[: len(tokens) - n_new]
        common = 0
        for a, b in zip(llm.input_ids[: llm.n_tokens].tolist(), cached):
            if a != b:
                break
            common += 1
        llm._ctx.kv_cache_seq_rm(-1, common, -1)
        llm.n_tokens = common
        if common < len(cached):
            llm.eval(cached[common:])  # the first turn's tokens: already cached in lmdesk too
        t = time.perf_counter()
        llm.eval(tokens[len(cached):])
        llm.sample(temp=0.0, repeat_penalty=1.0)
        return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=200)
    args = ap.parse_args()

    _app = QCoreApplication.instance() or QCoreApplication(sys.argv)  # the event loop wait_for runs
    model = str(embedded_model_path())
    threads = os.cpu_count() or 2
    raw = Llama(model_path=model, n_ctx=N_CTX, n_threads=threads, verbose=False)
    bridge = EngineBridge()
    load = bridge.load_model("llama", model, LoadOptions(n_ctx=N_CTX, n_threads=threads))
    wait_for(lambda: load.ended)
    if bridge.model is None:
        raise SystemExit(f"loading {model} failed: {load.error}")
    greedy = GenerationParams(max_tokens=args.max_tokens, temperature=0.0, repeat_penalty=1.0)
    msgs = [ChatMessage("user", PROMPT)]

    # 1. Decode throughput, interleaved. Tokens: lmdesk's own count (both runs are greedy on the
    # same prompt, so they produce the same text; the script checks that).
    ours_tps, raw_tps, same_text = [], [], []
    for i in range(args.runs + 1):  # run 0 warms up both and is not counted
        r = raw_run(raw, [m.as_dict() for m in msgs], args.max_tokens)
        run = Run(bridge).start(msgs, greedy).wait()
        n = run.stats.generated_tokens
        if i == 0:
            continue
        ours_tps.append((n - 1) / (run.t_last - run.t_first))
        raw_tps.append((n - 1) / r["decode_seconds"])
        same_text.append(r["text"].strip() == run.text.strip())
        print(f"run {i}: raw {raw_tps[-1]:.1f} tok/s, lmdesk {ours_tps[-1]:.1f} tok/s ({n} tokens)", flush=True)

    # 2. Stop latency: cancel 0.3 s into a ~2,000-token prompt, and 0.3 s into a generation.
    long_prompt = "Summarise this text.\n\n" + " ".join(
        f"Sentence number {i} is about the weather in a small coastal town." for i in range(160)
    )
    stop_prompt, stop_gen = [], []
    for i in range(args.runs):
        run = Run(bridge).start([ChatMessage("user", f"[{i}] {long_prompt}")], greedy)
        QTimer.singleShot(300, run.cancel)
        run.wait()
        stop_prompt.append(run.t_done - run.t_cancel)
        evaluated = (run.stats.prompt_tokens_evaluated, run.stats.prompt_tokens)

        run = Run(bridge).start(msgs, GenerationParams(max_tokens=2000, temperature=0.8, seed=i))
        wait_for(lambda: run.t_first)
        t_end = time.perf_counter() + 0.3
        wait_for(lambda: time.perf_counter() >= t_end)
        run.cancel()
        run.wait()
        stop_gen.append(run.t_done - run.t_cancel)
    print(f"stop during prompt eval: max {max(stop_prompt):.3f} s (evaluated {evaluated[0]}/{evaluated[1]} tokens)")
    print(f"stop during generation:  max {max(stop_gen):.3f} s", flush=True)

    # 3. Second turn TTFT with a 1,500-token history: against raw llama.cpp evaluating the same new
    # tokens on the same cached first turn (side by side, each run), and against an empty history.
    history = []  # 7 exchanges ≈ 1,500 tokens
    for i in range(7):
        history += [ChatMessage("user", f"Question {i}: " + "tell me about harbours and boats. " * 12),
                    ChatMessage("assistant", f"Answer {i}: " + "Harbours shelter boats from storms. " * 12)]
    med = statistics.median
    raw_turn = RawTurn(raw, model)
    ttft_hist, ttft_empty, raw_new, new_tokens, hist_tokens = [], [], [], [], 0
    short = GenerationParams(max_tokens=8, temperature=0.0)
    for i in range(args.runs):
        first = Run(bridge).start(history + [ChatMessage("user", f"First question {i}?")], short).wait()
        hist_tokens = first.stats.prompt_tokens
        turn2 = history + [ChatMessage("user", f"First question {i}?"), ChatMessage("assistant", first.text),
                           ChatMessage("user", "And a follow-up?")]
        run = Run(bridge).start(turn2, short).wait()
        ttft_hist.append(run.t_first - run.t_submit)
        n_new = run.stats.prompt_tokens_evaluated
        tokens = raw_turn.tokens(turn2)
        if len(tokens) != run.stats.prompt_tokens:
            raise SystemExit(f"raw prompt has {len(tokens)} tokens, lmdesk's {run.stats.prompt_tokens}")
        raw_new.append(raw_turn.evaluate_new(tokens, n_new))
        new_tokens.append(n_new)
        run = Run(bridge).start([ChatMessage("user", f"And a follow-up {i}?")], short).wait()
        ttft_empty.append(run.t_first - run.t_submit)
        print(f"turn 2 run {i + 1}: lmdesk TTFT {ttft_hist[-1]:.3f} s, raw eval of the same {n_new} new tokens "
              f"+ first token {raw_new[-1]:.3f} s; empty history {ttft_empty[-1]:.3f} s", flush=True)
    # For scale: the same second turn when the cache holds another conversation (no prefix reuse).
    run = Run(bridge).start(turn2, short).wait()
    ttft_no_reuse = run.t_first - run.t_submit
    print(f"second turn, {hist_tokens} tokens of history: TTFT {med(ttft_hist):.3f} s with prefix reuse, "
          f"{ttft_no_reuse:.3f} s without; empty history {med(ttft_empty):.3f} s")
    bridge.shutdown()

    # The floor for the history ÷ empty ratio on this CPU: raw llama.cpp evaluating the same 18 new
    # tokens after a 1,500-token context vs after a 24-token one (attention over the longer cache).
    long = raw.tokenize(("Harbours shelter boats from storms. " * 180).encode())[:1500]
    new = raw.tokenize(b" And a follow-up question here? Yes it is.", add_bos=False)[:18]
    floor = {}
    for label, prefix in (("history", long), ("empty", long[:24])):
        raw._ctx.kv_cache_clear()
        raw.n_tokens = 0
        raw.eval(prefix)
        times = []
        for _ in range(5):
            raw._ctx.kv_cache_seq_rm(-1, len(prefix), -1)
            raw.n_tokens = len(prefix)
            t = time.perf_counter()
            raw.eval(new)
            times.append(time.perf_counter() - t)
        floor[label] = med(times)
    print(f"raw eval of 18 tokens after 1,500 vs 24 tokens of context: ratio {floor['history'] / floor['empty']:.2f}")

    ratio_decode = med(ours_tps) / med(raw_tps)
    ratio_turn2 = med(ttft_hist) / med(raw_new)
    result = {
        "model": Path(model).name,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "runs": args.runs,
        "raw_tok_s": round(med(raw_tps), 1),
        "lmdesk_tok_s": round(med(ours_tps), 1),
        "ratio_lmdesk_over_raw": round(ratio_decode, 3),
        "ratio_lmdesk_over_raw_per_run": [round(o / r, 3) for o, r in zip(ours_tps, raw_tps)],
        "same_text_as_raw": all(same_text),
        "stop_latency_prompt_eval_s_max": round(max(stop_prompt), 3),
        "stop_latency_generation_s_max": round(max(stop_gen), 3),
        "history_tokens": hist_tokens,
        "turn2_new_tokens": new_tokens,
        "ttft_with_history_s": round(med(ttft_hist), 3),
        "raw_eval_new_tokens_and_first_token_s": round(med(raw_new), 3),
        "ttft_ratio_lmdesk_over_raw_same_new_tokens": round(ratio_turn2, 2),
        "ttft_ratio_lmdesk_over_raw_per_run": [round(o / r, 2) for o, r in zip(ttft_hist, raw_new)],
        "ttft_empty_s": round(med(ttft_empty), 3),
        "ttft_ratio_history_over_empty": round(med(ttft_hist) / med(ttft_empty), 2),
        "ttft_with_history_no_reuse_s": round(ttft_no_reuse, 3),
        "raw_eval_ratio_long_over_short_context": round(floor["history"] / floor["empty"], 2),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"decode tok/s, lmdesk ÷ raw: {ratio_decode:.3f} (goal ≥ 0.97)")
    print(f"second-turn TTFT ({hist_tokens} tokens of history), lmdesk ÷ raw on the same new tokens: "
          f"{ratio_turn2:.2f} (goal ≤ 1.1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
