"""The `lmdesk` command: no command opens the GUI; `ask`, `models` and `--self-test` run headless.

Exit codes: 0 ok, 1 self-test failed, 2 usage (argparse's own, an empty or unreadable prompt, an unavailable
backend), 3 the model could not be loaded, 4 generation failed, 130 interrupted by Ctrl+C.
Errors are one line `error: …` on stderr; `--debug` adds tracebacks and logs on stderr.
PySide6 is imported only on the GUI branch, so headless commands start fast and work without it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import TextIO

from lmdesk import __version__
from lmdesk.backends import BACKEND_NAMES
from lmdesk.config import Paths, Settings, app_paths, setup_logging
from lmdesk.core.errors import BackendUnavailableError, LmdeskError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions

log = logging.getLogger("lmdesk.cli")

EXIT_OK, EXIT_SELF_TEST, EXIT_USAGE, EXIT_LOAD, EXIT_GENERATE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
SELF_TEST_PROMPT = "Say hello in one short sentence."


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _temperature(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 5.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 5, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and shell-completion generators)."""
    parser = argparse.ArgumentParser(
        prog="lmdesk",
        description="Chat, write and translate with local language models. "
        "With no command, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"lmdesk {__version__}")
    _add_common(parser, None)
    parser.add_argument("--self-test", action="store_true",
                        help="load the default model, generate a short reply, print tokens/s")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ask = sub.add_parser("ask", help="answer one prompt on stdout, streamed as it is generated")
    _add_common(ask, argparse.SUPPRESS)  # accepted after the command too, without clobbering
    ask.add_argument("prompt", metavar="PROMPT", help="the prompt, or - to read it from stdin")
    ask.add_argument("--system", metavar="TEXT", help="a system prompt")
    ask.add_argument("--max-tokens", type=_positive_int, default=512, metavar="N")
    ask.add_argument("--temperature", type=_temperature, default=0.7, metavar="T")
    ask.add_argument("--seed", type=int, default=None, metavar="S")
    ask.add_argument("--ctx", type=_positive_int, default=None, metavar="N", help="context size in tokens")
    ask.add_argument("-v", "--verbose", action="store_true", help="print speed figures on stderr")

    models = sub.add_parser("models", help="list the models lmdesk can find")
    models.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    from lmdesk.cli_tasks import add_parsers  # `translate` and `write` (no Qt, no model imports)

    add_parsers(sub, _add_common, _positive_int, _temperature)
    return parser


def _add_common(parser: argparse.ArgumentParser, default: object) -> None:
    suppress = default is argparse.SUPPRESS
    parser.add_argument("--model", metavar="PATH|NAME", default=default,
                        help="a .gguf file, a model folder, or a name from `lmdesk models`")
    parser.add_argument("--backend", choices=BACKEND_NAMES, default=default,
                        help="the runtime (default: chosen from the model)")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="show tracebacks and log to stderr")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lmdesk` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse's usage errors (2) and --help/--version (0)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.self_test and args.command:
        parser.print_usage(sys.stderr)
        print("error: --self-test takes no command", file=sys.stderr)
        return EXIT_USAGE
    paths = app_paths()
    try:
        paths.ensure()
        setup_logging(paths, args.debug)
    except OSError as exc:
        print(f"error: cannot create lmdesk's folders: {exc}", file=sys.stderr)
        return EXIT_USAGE
    log.debug("lmdesk %s: %s", __version__, sys.argv if argv is None else argv)

    if args.command is None and not args.self_test:
        from lmdesk.ui.app import run_gui  # the only branch that imports PySide6

        return run_gui(model=args.model, backend=args.backend, debug=args.debug)
    try:
        if args.self_test:
            return _self_test(args, paths)
        if args.command == "models":
            return _models(paths)
        if args.command in ("translate", "write"):
            from lmdesk.cli_tasks import run as run_task_command

            return run_task_command(args, paths)
        return _ask(args, paths)
    except KeyboardInterrupt:  # a second Ctrl+C, or one outside a generation
        print(file=sys.stderr)
        return EXIT_INTERRUPTED


# ---- errors ------------------------------------------------------------------------------------


def _fail(error: BaseException, code: int, debug: bool, path: str | None = None) -> int:
    """Print `error: …` (one line; a traceback first with --debug) and return the exit code."""
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    text = error.user_text() if isinstance(error, LmdeskError) else f"{type(error).__name__}: {error}"
    if path is not None and Path(path).name not in text and path not in text:
        text = f"{path}: {text}"  # a load error must say which file it is about
    print(f"error: {' '.join(text.split())}", file=sys.stderr)
    return code


def _load_code(error: LmdeskError) -> int:
    return EXIT_USAGE if isinstance(error, BackendUnavailableError) else EXIT_LOAD


# ---- model choice ------------------------------------------------------------------------------


def resolve_model(model: str | None, backend: str | None, paths: Paths, settings: Settings) -> tuple[str, str]:
    """(backend, path) for --model/--backend; raises ModelLoadError for a bad or unknown model."""
    from lmdesk.core.models import default_model, find_model  # reads the filesystem; keep start-up lean

    if backend == "remote":
        # A server URL or model name, not a local file: the backend itself validates it.
        return backend, model or ""
    if model is None:
        chosen_backend, path = default_model(settings)
        return backend or chosen_backend, path
    info = find_model(model, paths, settings)
    return backend or info.backend, info.path


def load_options(args: argparse.Namespace, settings: Settings, path: str) -> LoadOptions:
    """LoadOptions from the settings and the model's own overrides, with --ctx on top."""
    return settings.load_options(path, getattr(args, "ctx", None))


# ---- commands ----------------------------------------------------------------------------------


def _ask(args: argparse.Namespace, paths: Paths) -> int:
    from lmdesk.cli_ask import AskFailed, AskJob, describe_stats, run_ask

    try:
        prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read the prompt from stdin: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not prompt.strip():
        print("error: the prompt is empty", file=sys.stderr)
        return EXIT_USAGE
    settings = Settings.load(paths)
    try:
        backend, path = resolve_model(args.model, args.backend, paths, settings)
    except LmdeskError as exc:
        return _fail(exc, _load_code(exc), args.debug, args.model)
    messages = ([ChatMessage("system", args.system)] if args.system else []) + [ChatMessage("user", prompt)]
    params = GenerationParams(max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed)
    job = AskJob(backend, path, messages, params, load_options(args, settings, path))
    out = _utf8_safe(sys.stdout)
    try:
        result = run_ask(job, out)
    except AskFailed as failed:
        if failed.stage == "load":
            return _fail(failed.error, _load_code(failed.error), args.debug, path)
        _end_line(out)
        return _fail(failed.error, EXIT_GENERATE, args.debug)
    except BrokenPipeError:  # `lmdesk ask … | head`: the reader has gone; say nothing more
        _silence_stdout()
        return 141
    _end_line(out, result.text)
    if args.verbose and result.stats is not None:
        print(describe_stats(result.stats, result.load_seconds), file=sys.stderr)
    if result.interrupted:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _self_test(args: argparse.Namespace, paths: Paths) -> int:
    from lmdesk.cli_ask import AskFailed, AskJob, describe_stats, run_ask

    settings = Settings.load(paths)
    try:
        backend, path = resolve_model(args.model, args.backend, paths, settings)
        print(f"self-test: loading {path} ({backend})", flush=True)
        job = AskJob(backend, path, [ChatMessage("user", SELF_TEST_PROMPT)],
                     GenerationParams(max_tokens=32, temperature=0.0, seed=0), load_options(args, settings, path))
        result = run_ask(job, None)
    except AskFailed as failed:
        return _fail(failed.error, EXIT_SELF_TEST, args.debug, path if failed.stage == "load" else None)
    except LmdeskError as exc:
        return _fail(exc, EXIT_SELF_TEST, args.debug, args.model)
    if result.interrupted:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    stats, model = result.stats, result.model
    if stats is None or model is None or stats.generated_tokens == 0 or not result.text.strip():
        print("error: self-test failed: the model generated no text", file=sys.stderr)
        return EXIT_SELF_TEST
    print(f"self-test: model {model.name} on {model.device}, context {model.context_length}")
    print(f"self-test: reply: {' '.join(result.text.split())}")
    print(f"self-test: {describe_stats(stats, result.load_seconds)}")
    print(f"self-test ok: {stats.tokens_per_second:.1f} tok/s")
    return EXIT_OK


def _models(paths: Paths) -> int:
    from lmdesk.core.models import discover_models, human_size

    found = discover_models(paths, Settings.load(paths))
    if not found:
        print("no models found", file=sys.stderr)
        return EXIT_OK
    rows = [("NAME", "BACKEND", "QUANT", "SIZE", "CONTEXT", "PATH")]
    for m in found:
        rows.append((
            m.name if len(m.name) <= 40 else m.name[:39] + "…",
            m.backend,
            m.quantization or "-",
            human_size(m.file_size) if m.file_size else "-",
            str(m.context_length) if m.context_length else "-",
            m.path + (f"  (error: {m.error})" if m.error else ""),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[5])
    return EXIT_OK


# ---- output helpers ----------------------------------------------------------------------------


def _utf8_safe(stream: TextIO) -> TextIO:
    """Never die on a character the terminal's encoding lacks: replace it instead."""
    try:
        stream.reconfigure(errors="replace")  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        pass
    return stream


def _silence_stdout() -> None:
    """Point stdout at devnull so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _end_line(out: TextIO, text: str | None = None) -> None:
    """Finish the reply with exactly one newline."""
    try:
        if text is None or not text.endswith("\n"):
            out.write("\n")
        out.flush()
    except (BrokenPipeError, ValueError):
        pass
