"""Translate benchmark on the embedded model: a 20,000-character English text translated into French
through lmdesk's whole pipeline (the Translate pane offscreen: planning in a task, the runner, the
engine's worker and bridge, the streaming output view), against raw llama-cpp-python
`create_chat_completion(stream=True)` on the same prompts, in the same run.

Generation throughput = Σ(tokens − 1) / Σ(first-to-last-token seconds) over the chunks. For lmdesk
the times are when the text *arrives on the GUI thread* (stricter than the backend's own timing,
which is reported too); for raw, when llama-cpp-python's generator yields it. Both greedy, same
sampling settings, same n_threads, same n_ctx.

To stay within ~5 minutes on 2 cores: each chunk's answer is capped (--max-tokens, default 96;
the budget would allow ~2× the chunk) and raw runs on a sample of the chunks (--raw-chunks, default
10, spread over the document), each right after lmdesk finished the same chunk, so that machine
noise hits both alike. The ratio on exactly the same chunks is reported as well.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_translate.py   → bench/results/translate.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LMDESK_HOME", tempfile.mkdtemp(prefix="lmdesk-bench-"))

from llama_cpp import Llama  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from qt_wait import wait_for  # noqa: E402  (bench/ is on sys.path when run as a script)

from lmdesk.core.modelfiles.discovery import embedded_model_path  # noqa: E402
from lmdesk.core.params import LoadOptions  # noqa: E402
from lmdesk.core.storage.store import Store  # noqa: E402
from lmdesk.core.translate.plan import TranslationPlan, paragraphs  # noqa: E402
from lmdesk.engine.bridge import EngineBridge, QtJob  # noqa: E402
from lmdesk.ui.translate_pane import TranslatePane  # noqa: E402

N_CTX = 4096
RESULTS = Path(__file__).resolve().parent / "results" / "translate.json"
SENTENCES = (
    "The village sits at the edge of a wide valley, where the river turns toward the sea.",
    "Every morning the baker opens his shop before sunrise and the smell of bread fills the street.",
    "Children walk to school along the old stone bridge, talking about the games they will play.",
    "In spring the fields are green and the farmers work from dawn until the light fades.",
    "The library keeps a collection of maps that show how the roads have changed over the centuries.",
    "Visitors often ask the way to the castle, which stands on a hill above the houses.",
    "On market days the square is full of stalls selling cheese, honey, vegetables and flowers.",
    "The doctor lives in a white house near the church and knows the name of every family.",
    "When winter comes, the snow closes the mountain pass and the valley grows quiet.",
    "Old photographs in the town hall show the same streets a hundred years ago.",
)


def source_text(chars: int) -> str:
    """A deterministic English document of about `chars` characters: headings, paragraphs, lists."""
    parts, i, section = [], 0, 1
    while sum(len(p) + 2 for p in parts) < chars:
        if i % 5 == 0:
            parts.append(f"## Part {section}")
            section += 1
        if i % 7 == 3:
            parts.append("\n".join(f"- {SENTENCES[(i + k) % len(SENTENCES)]}" for k in range(3)))
        else:
            parts.append(" ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(4)))
        i += 1
    return "\n\n".join(parts)[:chars].rsplit(" ", 1)[0] + ".\n"


class Arrivals:
    """Per chunk: when its job's text reached the GUI thread, and the job's final stats."""

    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stats: dict[int, object] = {}

    def follow(self, index: int, job: QtJob) -> None:
        job.sig_text.connect(lambda _text: self._text(index))
        job.sig_finished.connect(lambda stats: self.stats.__setitem__(index, stats))

    def _text(self, index: int) -> None:
        now = time.perf_counter()
        self.first.setdefault(index, now)
        self.last[index] = now


def raw_chunk(llm: Llama, plan: TranslationPlan, index: int) -> tuple[int, float]:
    """(tokens, first-to-last seconds) of raw llama-cpp-python streaming chunk `index`'s prompt."""
    p = plan.params(index)
    first = last = 0.0
    n = 0
    for part in llm.create_chat_completion(
        [m.as_dict() for m in plan.messages(index)], stream=True, max_tokens=p.max_tokens,
        temperature=0.0, top_p=p.top_p, top_k=p.top_k, min_p=p.min_p, repeat_penalty=p.repeat_penalty,
    ):
        if part["choices"][0]["delta"].get("content"):
            now = time.perf_counter()
            first = first or now
            last = now
            n += 1  # llama-cpp-python yields one piece per token (English output: no held bytes)
    return n, last - first


def rate(pairs: list[tuple[int, float]]) -> float:
    """Σ(tokens − 1) / Σ(seconds) over chunks that produced at least two tokens."""
    tokens = sum(n - 1 for n, s in pairs if n > 1)
    seconds = sum(s for n, s in pairs if n > 1)
    return tokens / seconds if seconds else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chars", type=int, default=20_000)
    ap.add_argument("--max-tokens", type=int, default=96, help="cap on each chunk's answer")
    ap.add_argument("--raw-chunks", type=int, default=10, help="chunks also run raw, interleaved")
    args = ap.parse_args()

    _app = QApplication.instance() or QApplication(sys.argv)  # the event loop wait_for runs
    model = str(embedded_model_path())
    threads = os.cpu_count() or 2
    raw = Llama(model_path=model, n_ctx=N_CTX, n_threads=threads, verbose=False)
    bridge = EngineBridge()
    load = bridge.load_model("llama", model, LoadOptions(n_ctx=N_CTX, n_threads=threads))
    wait_for(lambda: load.ended)
    if bridge.model is None:
        raise SystemExit(f"loading {model} failed: {load.error}")
    store = Store(Path(os.environ["LMDESK_HOME"]) / "bench.db")
    pane = TranslatePane(bridge, store)
    pane.resize(1000, 700)
    pane.show()
    pane.settings.temperature = 0.0
    pane.settings.max_tokens_cap = args.max_tokens
    pane.source_picker.set_code("en")
    pane.target_picker.set_code("fr")
    text = source_text(args.chars)
    pane.source.setPlainText(text)
    arrivals = Arrivals()

    # Raw runs interleaved with lmdesk's, chunk by chunk: when the pane has finished chunk i (and
    # before it sends the next one, so the worker is idle), raw llama-cpp-python translates the
    # same prompt. Every `step`-th chunk is sampled, so the raw figures span the whole document.
    raw("Hello", max_tokens=4)  # warm-up, not counted
    chunks: list[int] = []  # indices of the chunks lmdesk translated, in order
    raw_pairs: dict[int, tuple[int, float]] = {}
    raw_wall = [0.0]

    def on_started(index: int, _ordinal: int, _total: int) -> None:
        chunks.append(index)
        arrivals.follow(index, pane.runner.job)

    def on_done(index: int, _output: str) -> None:
        plan = pane.runner.plan
        step = max(1, plan.total // args.raw_chunks)
        if (plan.ordinal(index) - 1) % step == 0 and len(raw_pairs) < args.raw_chunks:
            t = time.perf_counter()
            raw_pairs[index] = raw_chunk(raw, plan, index)
            raw_wall[0] += time.perf_counter() - t

    pane.runner.sig_chunk_started.connect(on_started)
    pane.runner.sig_chunk_done.connect(on_done)
    started = time.perf_counter()
    pane.translate()
    wait_for(lambda: not pane.busy and pane.runner.plan is not None, timeout=900)
    wall = time.perf_counter() - started - raw_wall[0]
    plan = pane.runner.plan

    def ours(index: int) -> tuple[int, float]:
        return arrivals.stats[index].generated_tokens, arrivals.last.get(index, 0.0) - arrivals.first.get(index, 0.0)

    gui = [ours(i) for i in chunks]
    backend = [(arrivals.stats[i].generated_tokens, arrivals.stats[i].generation_seconds) for i in chunks]
    same = [ours(i) for i in raw_pairs]
    raw_all = list(raw_pairs.values())
    out = pane.output.toPlainText()
    result = {
        "model": Path(model).name,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "source_chars": len(text),
        "chunks": plan.total,
        "chunk_budget_tokens": plan.budget.chunk_tokens,
        "max_tokens_per_chunk": args.max_tokens,
        "paragraphs_in_out": [len(paragraphs(text)), len(paragraphs(out))],
        "lmdesk_wall_s": round(wall, 1),
        "lmdesk_generated_tokens": sum(n for n, _ in backend),
        "lmdesk_tok_s": round(rate(gui), 1),
        "lmdesk_tok_s_backend_timing": round(rate(backend), 1),
        "raw_chunks": len(raw_all),
        "raw_generated_tokens": sum(n for n, _ in raw_all),
        "raw_tok_s": round(rate(raw_all), 1),
        "lmdesk_tok_s_same_chunks": round(rate(same), 1),
        "ratio_lmdesk_over_raw": round(rate(gui) / rate(raw_all), 3),
        "ratio_same_chunks": round(rate(same) / rate(raw_all), 3),
    }
    bridge.shutdown()
    store.close()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"lmdesk {result['lmdesk_tok_s']} tok/s vs raw {result['raw_tok_s']} tok/s: "
          f"ratio {result['ratio_lmdesk_over_raw']} (goal ≥ 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
