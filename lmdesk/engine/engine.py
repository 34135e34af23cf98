"""Engine: the model slots and the router, without Qt — what the CLI, the benchmarks and the API
server drive directly, and what the Qt bridge wraps.

A slot is a name ("main" is the one the panes use) owning one InferenceWorker: its own thread, its
own FIFO queue and at most one loaded model. Two slots serve at the same time — a remote endpoint
next to a local model, or two small local models when the memory estimate allows both.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from lmdesk.backends import load_backend
from lmdesk.core.errors import ModelLoadError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions
from lmdesk.engine.jobs import Job, Listener
from lmdesk.engine.requests import CountRequest, GenerateRequest, LoadedModel, LoadRequest, Request, model_name
from lmdesk.engine.router import EventRouter
from lmdesk.engine.worker import DEFAULT_FLUSH_INTERVAL, BackendLoaderFn, InferenceWorker

log = logging.getLogger("lmdesk.engine")

MAIN_SLOT = "main"
LOCAL_BACKENDS = frozenset({"llama", "torch"})
MEMORY_HEADROOM = 1.25  # a model needs about its file size in RAM, plus buffers and the KV cache


class Engine:
    """Model slots, each a worker thread with its own queue; every request returns a Job."""

    def __init__(
        self,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        loader: BackendLoaderFn = load_backend,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.router = EventRouter()
        self._cache_dir = str(cache_dir) if cache_dir is not None else None  # handed to backends
        self._flush_interval = flush_interval
        self._loader = loader
        self._slots: dict[str, InferenceWorker] = {}
        self._stopped: list[InferenceWorker] = []  # closed slots' threads, for `running`
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ---- slots -------------------------------------------------------------------------------

    @property
    def slots(self) -> list[str]:
        """Names of the slots that exist now."""
        with self._lock:
            return list(self._slots)

    def worker(self, slot: str = MAIN_SLOT) -> InferenceWorker:
        """The slot's worker thread, started on first use."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine has been shut down")
            worker = self._slots.get(slot)
            if worker is None:
                name = "lmdesk-worker" if slot == MAIN_SLOT else f"lmdesk-worker-{slot}"
                worker = InferenceWorker(
                    self.router, flush_interval=self._flush_interval, loader=self._slot_loader(slot), name=name
                )
                self._slots[slot] = worker
                worker.start()
            return worker

    @property
    def running(self) -> bool:
        """Some slot's thread is still alive (also one left busy past a shutdown's timeout)."""
        with self._lock:
            workers = list(self._slots.values()) + self._stopped
        return any(w.is_alive() for w in workers)

    def model(self, slot: str = MAIN_SLOT) -> LoadedModel | None:
        """The model loaded in `slot` now (None while it has none)."""
        with self._lock:
            worker = self._slots.get(slot)
        return worker.current_model if worker is not None else None

    def close_slot(self, slot: str, timeout: float = 5.0) -> bool:
        """Cancel the slot's requests, free its model and end its thread; True when it ended."""
        with self._lock:
            worker = self._slots.pop(slot, None)
            if worker is not None:
                self._stopped.append(worker)
        return worker.shutdown(timeout) if worker is not None else True

    # ---- requests ----------------------------------------------------------------------------

    def submit(self, request: Request, slot: str = MAIN_SLOT, listener: Listener | None = None) -> Job:
        """Queue `request` on `slot` and return its job at once (`listener` sees every event)."""
        job = Job(request, slot)
        if listener is not None:
            job.add_listener(listener)
        worker = self.worker(slot)
        self.router.track(job)  # before the worker can send the job's first event
        try:
            worker.submit(request)
        except RuntimeError:
            self.router.forget(job)
            raise
        return job

    def load(self, backend: str, path: str, options: LoadOptions | None = None, slot: str = MAIN_SLOT,
             listener: Listener | None = None) -> Job:
        """Load a model into `slot`; its old model keeps working until the new one is ready."""
        return self.submit(LoadRequest(backend, str(path), options or LoadOptions()), slot, listener)

    def generate(self, messages: Sequence[ChatMessage], params: GenerationParams | None = None,
                 slot: str = MAIN_SLOT, listener: Listener | None = None) -> Job:
        """Generate a reply with the slot's model."""
        return self.submit(GenerateRequest(list(messages), params or GenerationParams()), slot, listener)

    def count_tokens(self, messages: Sequence[ChatMessage], slot: str = MAIN_SLOT,
                     listener: Listener | None = None) -> Job:
        """Count the prompt tokens of `messages` with the slot model's own tokenizer."""
        return self.submit(CountRequest(list(messages)), slot, listener)

    def cancel_all(self) -> None:
        """Cancel every queued and running request of every slot."""
        with self._lock:
            workers = list(self._slots.values())
        for worker in workers:
            worker.cancel_all()

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Cancel everything, free every model and end every slot's thread (idempotent)."""
        with self._lock:
            self._closed = True
            workers = list(self._slots.values())
            self._stopped.extend(workers)
            self._slots.clear()
        ended = [worker.shutdown(timeout) for worker in workers]
        return all(ended)

    # ---- memory ------------------------------------------------------------------------------

    def _slot_loader(self, slot: str) -> BackendLoaderFn:
        """The loader for `slot`: refuses a local model that would not fit next to the other slots'."""

        def load(backend: str, path: str, options: LoadOptions, *rest):
            if backend in LOCAL_BACKENDS:
                self._check_memory(slot, backend, path)
            if options.cache_dir is None and self._cache_dir is not None:
                options = dataclasses.replace(options, cache_dir=self._cache_dir)
            return self._loader(backend, path, options, *rest)

        return load

    def _check_memory(self, slot: str, backend: str, path: str) -> None:
        others = [m for name in self.slots if name != slot and (m := self.model(name)) is not None
                  and m.backend in LOCAL_BACKENDS]
        if not others:
            return  # one local model: its own load reports out-of-memory with its own words
        need = model_bytes(path) * MEMORY_HEADROOM
        available = available_memory()
        if need and available is not None and need > available:
            loaded = ", ".join(m.name for m in others)
            raise ModelLoadError(
                f"{model_name(path)} needs about {need / 1e9:.1f} GB of memory, but only "
                f"{available / 1e9:.1f} GB is free next to {loaded}",
                "unload the other model first, or choose a smaller one",
            )


def model_bytes(path: str) -> int:
    """Bytes of a model's weights on disk: a file, or the weight files of a folder."""
    p = Path(path)
    try:
        if p.is_file():
            return p.stat().st_size
        if p.is_dir():
            return sum(f.stat().st_size for f in p.iterdir() if f.suffix in (".safetensors", ".gguf", ".bin"))
    except OSError:
        pass
    return 0


def available_memory() -> int | None:
    """Memory the system can give a new model now (Linux MemAvailable), None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
