"""What every `lmdesk` command shares: exit codes, the options and error lines, the model choice,
output that survives odd terminals and closed pipes, and Ctrl+C.

Ctrl+C while a command runs a job: the first one cancels that job, which stops at the next token
boundary and keeps what was printed (the command then says `interrupted` and exits 130); a second
one raises KeyboardInterrupt, so waiting stops at once.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from lmdesk.backends import BACKEND_NAMES
from lmdesk.config import Paths, Settings
from lmdesk.core.errors import BackendUnavailableError, LmdeskError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions
from lmdesk.core.stats import GenerationStats

if TYPE_CHECKING:  # the engine is imported when a command runs, not when the GUI starts
    from lmdesk.engine.engine import Engine
    from lmdesk.engine.jobs import Job
    from lmdesk.engine.requests import LoadedModel

EXIT_OK = 0
EXIT_SELF_TEST = 1  # --self-test failed
EXIT_USAGE = 2  # argparse's own, unreadable or empty input, an unavailable backend
EXIT_LOAD = 3  # the model could not be loaded
EXIT_GENERATE = 4  # generation failed
EXIT_INTERRUPTED = 130  # Ctrl+C
EXIT_BROKEN_PIPE = 141  # the reader of stdout went away (`lmdesk ask … | head`)


class UsageError(Exception):
    """Bad input from the user: exit 2 with this one-line message."""


# ---- options ------------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """argparse type: an integer above zero."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def temperature(text: str) -> float:
    """argparse type: a sampling temperature between 0 and 5."""
    value = float(text)
    if not 0.0 <= value <= 5.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 5, not {text}")
    return value


def add_model_options(parser: argparse.ArgumentParser, default: object) -> None:
    """--model, --backend and --debug; a command's parser passes argparse.SUPPRESS so that the
    same options given before the command are not clobbered by its defaults."""
    suppress = default is argparse.SUPPRESS
    parser.add_argument("--model", metavar="PATH|NAME", default=default,
                        help="a .gguf file, a model folder, or a name from `lmdesk models`")
    parser.add_argument("--backend", choices=BACKEND_NAMES, default=default,
                        help="the runtime (default: chosen from the model)")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="show tracebacks and log to stderr")


def add_text_options(parser: argparse.ArgumentParser, default_temperature: float) -> None:
    """The options of the commands that work on a text (`translate`, `write`)."""
    add_model_options(parser, argparse.SUPPRESS)  # accepted after the command too, without clobbering
    parser.add_argument("file", nargs="?", default="-", metavar="FILE|-", help="the text (default: stdin)")
    parser.add_argument("--max-tokens", type=positive_int, default=None, metavar="N",
                        help="cap on each answer (default: what the text needs)")
    parser.add_argument("--temperature", type=temperature, default=default_temperature, metavar="T")
    parser.add_argument("--seed", type=int, default=None, metavar="S")
    parser.add_argument("--ctx", type=positive_int, default=None, metavar="N", help="context size in tokens")
    parser.add_argument("-v", "--verbose", action="store_true", help="print progress and speed on stderr")


# ---- errors -------------------------------------------------------------------------------------


def fail(error: BaseException, code: int, debug: bool, path: str | None = None) -> int:
    """Print `error: …` (one line; a traceback first with --debug) and return the exit code."""
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    text = error.user_text() if isinstance(error, LmdeskError) else f"{type(error).__name__}: {error}"
    if path is not None and Path(path).name not in text and path not in text:
        text = f"{path}: {text}"  # a load error must say which file it is about
    print(f"error: {' '.join(text.split())}", file=sys.stderr)
    return code


def load_exit_code(error: LmdeskError) -> int:
    """The exit code of a failed model choice or load: 2 for a backend this install lacks, else 3."""
    return EXIT_USAGE if isinstance(error, BackendUnavailableError) else EXIT_LOAD


def interrupted() -> int:
    """Say so on stderr and return 130."""
    print("interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


# ---- model choice -------------------------------------------------------------------------------


def read_settings(paths: Paths) -> Settings:
    """The user's settings for a command: a file that cannot be used gives defaults and one
    `warning:` line on stderr; a command never moves or rewrites the file (the app does)."""
    settings = Settings.load(paths, set_aside=False)
    if settings.load_problem:
        print(f"warning: {settings.load_problem}", file=sys.stderr)
    return settings


def resolve_model(model: str | None, backend: str | None, paths: Paths, settings: Settings) -> tuple[str, str]:
    """(backend, path) for --model/--backend; raises ModelLoadError for a bad or unknown model."""
    from lmdesk.core.modelfiles.discovery import default_model, find_model  # reads the filesystem; keep start-up lean

    if backend == "remote":
        # A server URL or model name, not a local file: the backend itself validates it.
        return backend, model or ""
    if model is None:
        chosen_backend, path = default_model(settings)
        return backend or chosen_backend, path
    given = Path(model).expanduser()
    if backend is not None and given.is_dir():
        # A folder with the backend named: that backend judges it and says what is wrong (e.g. a
        # pickle checkpoint that only the torch backend can load, when allowed for it).
        return backend, str(given)
    info = find_model(model, paths, settings)
    return backend or info.backend, info.path


def load_options(args: argparse.Namespace, settings: Settings, path: str) -> LoadOptions:
    """LoadOptions from the settings and the model's own overrides, with --ctx on top."""
    return settings.load_options(path, getattr(args, "ctx", None))


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


# ---- input and output ---------------------------------------------------------------------------


def decode_input(data: bytes, name: str) -> str:
    """`data` as UTF-8 text; UsageError naming `name` and the byte offset when it is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name} is not valid UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def check_text(text: str, name: str) -> str:
    """`text` from the command line (undecodable bytes arrive as lone surrogates); UsageError
    naming `name` and the byte offset when it is not valid UTF-8. Returns the text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        offset = len(text[:exc.start].encode("utf-8", errors="surrogateescape"))
        raise UsageError(f"{name} is not valid UTF-8 text (at byte offset {offset})") from None
    return text


def read_stdin(name: str = "stdin") -> str:
    """All of stdin as UTF-8 text, read as bytes so that the locale cannot hide invalid input;
    UsageError when it is unreadable or not UTF-8."""
    try:
        buffer = getattr(sys.stdin, "buffer", None)
        if buffer is None:  # a replaced text stream (tests, embedding): it decoded already
            return check_text(sys.stdin.read(), name)
        data = buffer.read()
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read {name}: {reason}") from None
    return decode_input(data, name)


def read_input(file: str) -> str:
    """The input text from FILE or stdin (`-`); UsageError when unreadable, not UTF-8 or empty."""
    if file == "-":
        text = read_stdin()
    else:
        try:
            data = Path(file).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
        text = decode_input(data, file)
    if not text.strip():
        raise UsageError("the input text is empty")
    return text


def utf8_safe(stream: TextIO) -> TextIO:
    """Never die on a character the terminal's encoding lacks: replace it instead."""
    try:
        stream.reconfigure(errors="replace")  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        pass
    return stream


def silence_stdout() -> None:
    """Point stdout at devnull so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def end_line(out: TextIO, text: str | None = None) -> None:
    """Finish the output with exactly one newline (`text`: what was printed, if known)."""
    try:
        if text is None or not text.endswith("\n"):
            out.write("\n")
        out.flush()
    except (BrokenPipeError, ValueError):
        pass


# ---- Ctrl+C -------------------------------------------------------------------------------------


class CancelOnInterrupt:
    """While active, the first Ctrl+C cancels the watched job (and any watched after it); a second
    one raises KeyboardInterrupt.

        with CancelOnInterrupt() as ctrl_c:
            job = ctrl_c.watch(engine.generate(messages, params))
            ...
            if ctrl_c.hit: ...

    Outside the main thread signals cannot be caught: there it only tracks the jobs.
    """

    def __init__(self) -> None:
        self.hit = False
        self._job: Job | None = None
        self._previous: object = None

    def __enter__(self) -> CancelOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]
            self._previous = None

    def watch(self, job: Job) -> Job:
        """Make `job` the one Ctrl+C cancels; cancelled at once if Ctrl+C came already. Returns it."""
        self._job = job
        if self.hit:
            job.cancel()
        return job

    def _handle(self, signum: int, frame: object) -> None:
        self.hit = True
        job = self._job
        if job is not None:
            job.cancel()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the next Ctrl+C is not polite


# ---- the engine of one command ------------------------------------------------------------------


class ModelSession:
    """One command's engine and Ctrl+C guard: load a model, run jobs on it, shut down at the end.

    Every job it starts is the one Ctrl+C cancels; after a Ctrl+C, later jobs start cancelled.
    """

    def __init__(self, paths: Paths, engine: Engine | None = None) -> None:
        from lmdesk.engine.engine import Engine

        self.paths = paths
        self.engine = engine if engine is not None else Engine(cache_dir=paths.cache)  # backends keep converted models there
        self.ctrl_c = CancelOnInterrupt()
        self.model: LoadedModel | None = None
        self.load_seconds = 0.0

    @property
    def interrupted(self) -> bool:
        """The user pressed Ctrl+C."""
        return self.ctrl_c.hit

    def __enter__(self) -> ModelSession:
        self.ctrl_c.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop catching Ctrl+C, cancel what runs, free the model, end the threads (idempotent)."""
        self.ctrl_c.__exit__()
        self.engine.shutdown()

    def fail(self, error: BaseException, code: int, debug: bool, path: str | None = None) -> int:
        """Close, then print the error line (see `fail`): it stays the last line on stderr, after
        the engine's own log lines of --debug."""
        self.close()
        return fail(error, code, debug, path)

    def load(self, backend: str, path: str, options: LoadOptions) -> LoadedModel:
        """Load the model and wait for it; raises its LmdeskError, or JobCancelled after Ctrl+C."""
        started = time.perf_counter()
        job = self.ctrl_c.watch(self.engine.load(backend, path, options))
        try:
            self.model = job.result()  # type: ignore[assignment]
        finally:
            self.load_seconds = time.perf_counter() - started
        assert self.model is not None
        return self.model

    def open_model(self, args: argparse.Namespace, failure_code: int | None = None,
                   announce: Callable[[str, str], None] | None = None) -> int | None:
        """Resolve --model/--backend and load that model: None once it is ready, else the exit
        code after its error line (`failure_code`, by default 3, or 2 for an unavailable backend)
        or after `interrupted`. `announce(backend, path)` runs between the two steps."""
        from lmdesk.engine.jobs import JobCancelled

        settings = read_settings(self.paths)
        try:
            backend, path = resolve_model(args.model, args.backend, self.paths, settings)
        except LmdeskError as exc:
            code = failure_code if failure_code is not None else load_exit_code(exc)
            return self.fail(exc, code, args.debug, args.model)
        if announce is not None:
            announce(backend, path)
        try:
            self.load(backend, path, load_options(args, settings, path))
        except JobCancelled:  # Ctrl+C during the load ends it as cancelled: not an error of the model
            self.close()
            return interrupted()
        except LmdeskError as exc:
            if self.interrupted:
                self.close()
                return interrupted()
            code = failure_code if failure_code is not None else load_exit_code(exc)
            return self.fail(exc, code, args.debug, path)
        return interrupted() if self.interrupted else None

    def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Job:
        """Start a generation with the loaded model; its job streams the reply."""
        return self.ctrl_c.watch(self.engine.generate(messages, params))


