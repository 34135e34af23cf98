"""Headless generation for the CLI: load a model and stream one reply through the InferenceWorker.

The worker's callbacks run on its thread; here they only put events on a queue.Queue that the
main thread reads, so all printing happens on the main thread. Ctrl+C (SIGINT) cancels the request
through its Event and the main thread keeps reading until the worker reports the end, so the
output stops cleanly at a token boundary; a second Ctrl+C stops waiting.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Literal, TextIO

from lmdesk.core.errors import LmdeskError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions
from lmdesk.core.stats import GenerationStats
from lmdesk.engine.worker import GenerateRequest, InferenceWorker, LoadedModel, LoadRequest

log = logging.getLogger("lmdesk.cli")

Stage = Literal["load", "generate"]


@dataclass
class AskJob:
    """One headless generation: which model to load and what to ask it."""

    backend: str
    path: str
    messages: list[ChatMessage]
    params: GenerationParams = field(default_factory=GenerationParams)
    options: LoadOptions = field(default_factory=LoadOptions)


@dataclass
class AskResult:
    """What came back: the text, the stats, and whether the user interrupted it."""

    text: str = ""
    stats: GenerationStats | None = None
    model: LoadedModel | None = None
    load_seconds: float = 0.0
    interrupted: bool = False


class AskFailed(Exception):
    """The load or the generation failed; `error` is the typed error for the user."""

    def __init__(self, stage: Stage, error: LmdeskError) -> None:
        super().__init__(error.user_text())
        self.stage = stage
        self.error = error


class QueueEvents:
    """WorkerEvents that forward every callback to a queue read by the main thread."""

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple] = queue.Queue()

    def on_started(self, req_id: int) -> None:
        pass  # nothing to show: the CLI prints text as it arrives

    def on_chunk(self, req_id: int, text: str) -> None:
        self.queue.put(("chunk", req_id, text))

    def on_finished(self, req_id: int, stats: GenerationStats) -> None:
        self.queue.put(("finished", req_id, stats))

    def on_failed(self, req_id: int, error: LmdeskError) -> None:
        self.queue.put(("failed", req_id, error))

    def on_load_progress(self, req_id: int, fraction: float) -> None:
        pass

    def on_model_loaded(self, req_id: int, model: LoadedModel) -> None:
        self.queue.put(("loaded", req_id, model))


class _Interrupt:
    """SIGINT handler for the duration of a run: the first Ctrl+C cancels, a second one raises."""

    def __init__(self, worker: InferenceWorker) -> None:
        self.worker = worker
        self.hit = False
        self._previous = None

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():  # signals only work there
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: object) -> None:
        self.hit = True
        self.worker.cancel_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the next Ctrl+C is not polite


def run_ask(job: AskJob, out: TextIO | None) -> AskResult:
    """Load job's model, generate, write text to `out` as it comes; raises AskFailed."""
    events = QueueEvents()
    worker = InferenceWorker(events)
    worker.start()
    result = AskResult()
    try:
        with _Interrupt(worker) as interrupt:
            started = time.perf_counter()
            load_id = worker.submit(LoadRequest(job.backend, job.path, job.options))
            kind, _rid, value = _next(events, load_id)
            result.load_seconds = time.perf_counter() - started
            if interrupt.hit:
                result.interrupted = True
                return result
            if kind == "failed":
                raise AskFailed("load", value)
            result.model = value
            gen_id = worker.submit(GenerateRequest(job.messages, job.params))
            if interrupt.hit:  # Ctrl+C between the load and the submit
                worker.cancel(gen_id)
            pieces: list[str] = []
            while True:
                kind, _rid, value = _next(events, gen_id)
                if kind == "chunk":
                    pieces.append(value)
                    if out is not None:
                        out.write(value)
                        out.flush()
                    continue
                result.text = "".join(pieces)
                if kind == "failed":
                    raise AskFailed("generate", value)
                result.stats = value
                result.interrupted = interrupt.hit
                return result
    finally:
        worker.cancel_all()
        worker.shutdown(timeout=10.0)


def _next(events: QueueEvents, req_id: int) -> tuple:
    """The next event of `req_id`; polls so that a Ctrl+C handler gets to run promptly."""
    while True:
        try:
            event = events.queue.get(timeout=0.2)
        except queue.Empty:
            continue
        if event[1] == req_id:
            return event


def describe_stats(stats: GenerationStats, load_seconds: float | None = None) -> str:
    """One line of speed figures for stderr (--verbose) and the self-test."""
    parts = []
    if load_seconds is not None:
        parts.append(f"load {load_seconds:.2f} s")
    parts.append(f"prompt {stats.prompt_tokens} tokens")
    if stats.time_to_first_token is not None:
        parts.append(f"first token after {stats.time_to_first_token:.2f} s")
    parts.append(f"{stats.generated_tokens} tokens at {stats.tokens_per_second:.1f} tok/s")
    parts.append(f"stop: {stats.stop_reason}")
    return ", ".join(parts)
