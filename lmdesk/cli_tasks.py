"""`lmdesk translate` and `lmdesk write`: the Translate and Write panes, headless.

Same options, exit codes and error lines as `lmdesk ask` (see lmdesk.cli). `translate` uses the
pane's chunking and prompts (lmdesk.core.translate_plan) and prints the output chunk by chunk as
each one is done, so the structure (paragraphs, blank lines, headings, list markers) is the
source's. `write` prints the whole document with the action applied: the rewritten text, or for
`continue` the text followed by its continuation. Replies are cleaned of chatter before printing,
which is why `write` prints at the end rather than token by token.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from lmdesk.cli import (
    EXIT_GENERATE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, _end_line, _fail, _load_code, _silence_stdout,
    _utf8_safe, load_options, resolve_model,
)
from lmdesk.cli_ask import AskFailed, QueueEvents, _Interrupt, _next, describe_stats
from lmdesk.config import Paths, Settings
from lmdesk.core.errors import ContextOverflowError, LmdeskError
from lmdesk.core.languages import AUTO, find_language
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams
from lmdesk.core.stats import GenerationStats
from lmdesk.core.tasks import (
    ACTIONS, WriteAction, clean_reply, continuation_glue, max_new_tokens, parse_action, parse_glossary,
    write_messages,
)
from lmdesk.core.chunk_budget import estimate_tokens
from lmdesk.core.translate_plan import TranslateOptions, plan_translation
from lmdesk.engine.worker import GenerateRequest, InferenceWorker, LoadedModel, LoadRequest

log = logging.getLogger("lmdesk.cli")

COMMANDS = ("translate", "write")
_LANGUAGE_HINT = "use a code or English name such as en, zh-Hans, ja, ar, de or 'Spanish'"


class UsageError(Exception):
    """Bad input from the user: exit 2 with this one-line message."""


def add_parsers(sub, add_common: Callable, positive_int: Callable, temperature: Callable) -> None:
    """Register `translate` and `write` on the `lmdesk` subparsers (called by cli.build_parser)."""
    tr = sub.add_parser("translate", help="translate a text of any length, keeping its structure")
    write = sub.add_parser("write", help="rewrite, proofread, shorten, … a text (the Write pane's actions)")
    for p, temp in ((tr, 0.2), (write, 0.5)):
        add_common(p, argparse.SUPPRESS)
        p.add_argument("file", nargs="?", default="-", metavar="FILE|-", help="the text (default: stdin)")
        p.add_argument("--max-tokens", type=positive_int, default=None, metavar="N",
                       help="cap on each answer (default: what the text needs)")
        p.add_argument("--temperature", type=temperature, default=temp, metavar="T")
        p.add_argument("--seed", type=int, default=None, metavar="S")
        p.add_argument("--ctx", type=positive_int, default=None, metavar="N", help="context size in tokens")
        p.add_argument("-v", "--verbose", action="store_true", help="print progress and speed on stderr")
    tr.add_argument("--to", required=True, metavar="LANG", help="target language (code or English name)")
    tr.add_argument("--from", dest="source", default=AUTO, metavar="LANG",
                    help="source language (default: detect it)")
    tr.add_argument("--glossary", metavar="FILE", help="lines 'term = translation', or a bare term to keep")
    names = ", ".join(a.value for a in WriteAction)
    write.add_argument("--action", required=True, metavar="NAME", help=f"one of: {names}")
    write.add_argument("--instruction", metavar="TEXT", default="", help="the instruction of --action custom")


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run `translate` or `write`; returns the exit code."""
    try:
        text = _read(args.file)
        job = _translate_job(args, text) if args.command == "translate" else _write_job(args, text)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings = Settings.load(paths)
    try:
        backend, path = resolve_model(args.model, args.backend, paths, settings)
    except LmdeskError as exc:
        return _fail(exc, _load_code(exc), args.debug, args.model)
    out = _utf8_safe(sys.stdout)
    with Engine() as engine:
        try:
            engine.load(backend, path, load_options(args, settings, path))
        except AskFailed as failed:
            if not engine.interrupted:  # Ctrl+C during the load ends it as "cancelled": not an error
                return _fail(failed.error, _load_code(failed.error), args.debug, path)
        if engine.interrupted:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        try:
            return job(engine, out)
        except BrokenPipeError:  # `lmdesk translate … | head`: the reader has gone
            _silence_stdout()
            return 141


# ---- the engine, headless ----------------------------------------------------------------------


class Engine:
    """An InferenceWorker with a model loaded once and any number of generations after it."""

    def __init__(self) -> None:
        self.events = QueueEvents()
        self.worker = InferenceWorker(self.events)
        self.model: LoadedModel | None = None
        self.load_seconds = 0.0
        self._interrupt = _Interrupt(self.worker)

    @property
    def interrupted(self) -> bool:
        """The user pressed Ctrl+C."""
        return self._interrupt.hit

    def __enter__(self) -> Engine:
        self.worker.start()
        self._interrupt.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._interrupt.__exit__(*exc)
        self.worker.cancel_all()
        self.worker.shutdown(timeout=10.0)

    def load(self, backend: str, path: str, options) -> None:
        """Load the model; raises AskFailed('load', …)."""
        started = time.perf_counter()
        kind, _rid, value = _next(self.events, self.worker.submit(LoadRequest(backend, path, options)))
        self.load_seconds = time.perf_counter() - started
        if kind == "failed":
            raise AskFailed("load", value)
        self.model = value

    def generate(self, messages: list[ChatMessage], params: GenerationParams) -> tuple[str, GenerationStats]:
        """One reply, whole; raises AskFailed('generate', …). Stops early on Ctrl+C."""
        req_id = self.worker.submit(GenerateRequest(messages, params))
        if self.interrupted:
            self.worker.cancel(req_id)
        pieces: list[str] = []
        while True:
            kind, _rid, value = _next(self.events, req_id)
            if kind == "chunk":
                pieces.append(value)
            elif kind == "failed":
                raise AskFailed("generate", value)
            else:
                return "".join(pieces), value


# ---- input --------------------------------------------------------------------------------------


def _read(file: str) -> str:
    """The input text from FILE or stdin; UsageError when unreadable or empty."""
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read {file}: {reason}") from None
    if not text.strip():
        raise UsageError("the input text is empty")
    return text


def _language(value: str, what: str) -> str:
    if value == AUTO:
        return AUTO
    lang = find_language(value)
    if lang is None:
        raise UsageError(f"unknown {what} language {value!r} ({_LANGUAGE_HINT})")
    return lang.code


Job = Callable[[Engine, TextIO], int]


# ---- translate ----------------------------------------------------------------------------------


def _translate_job(args: argparse.Namespace, text: str) -> Job:
    target = _language(args.to, "target")
    if target == AUTO:
        raise UsageError("--to needs a language, not 'auto'")
    glossary = ()
    if args.glossary:
        glossary = tuple(parse_glossary(_read(args.glossary)))
    options = TranslateOptions(target=target, source=_language(args.source, "source"), glossary=glossary,
                               temperature=args.temperature, seed=args.seed, max_tokens_cap=args.max_tokens)

    def job(engine: Engine, out: TextIO) -> int:
        try:
            plan = plan_translation(text, engine.model.context_length, options)
        except (LmdeskError, ValueError) as exc:
            error = exc if isinstance(exc, LmdeskError) else ContextOverflowError(str(exc))
            return _fail(error, EXIT_GENERATE, args.debug)
        if args.verbose and plan.detected:
            print(f"detected source language: {plan.detected}", file=sys.stderr)
        printed = ""
        tokens, seconds = 0, 0.0
        while (index := plan.next_index()) is not None and not engine.interrupted:
            if args.verbose:
                print(f"chunk {plan.ordinal(index)} of {plan.total}", file=sys.stderr)
            try:
                reply, stats = engine.generate(plan.messages(index), plan.params(index))
            except AskFailed as failed:
                _end_line(out, printed)
                return _fail(failed.error, EXIT_GENERATE, args.debug)
            if stats.stop_reason == "cancelled":
                break
            tokens += stats.generated_tokens
            seconds += stats.generation_seconds
            plan.accept(index, reply)
            printed = _print_new(out, printed, plan.output(partial=True))
        if engine.interrupted:
            _end_line(out, printed)
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        printed = _print_new(out, printed, plan.output(partial=False))
        _end_line(out, printed)
        if args.verbose:
            rate = tokens / seconds if seconds else 0.0
            print(f"{plan.total} chunks, {tokens} tokens at {rate:.1f} tok/s, load {engine.load_seconds:.2f} s",
                  file=sys.stderr)
        return EXIT_OK

    return job


def _print_new(out: TextIO, printed: str, full: str) -> str:
    """Write what `full` adds to what is already printed; returns the new printed text."""
    if full.startswith(printed) and len(full) > len(printed):
        out.write(full[len(printed):])
        out.flush()
        return full
    return printed


# ---- write --------------------------------------------------------------------------------------


def _write_job(args: argparse.Namespace, text: str) -> Job:
    try:
        action = parse_action(args.action)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if ACTIONS[action].needs_instruction and not args.instruction.strip():
        raise UsageError("--action custom needs --instruction TEXT")
    messages = write_messages(action, text, instruction=args.instruction)

    def job(engine: Engine, out: TextIO) -> int:
        n_ctx = engine.model.context_length
        prompt = sum(estimate_tokens(m.content) + 8 for m in messages) + 8
        room = n_ctx - prompt - max(16, n_ctx // 32)
        if room < 16:
            error = ContextOverflowError(
                f"the text (about {prompt:,} tokens) is too long for the model's context ({n_ctx:,} tokens)",
                "split it, or load the model with a larger context (--ctx)",
            )
            return _fail(error, EXIT_GENERATE, args.debug)
        limit = min(room, max_new_tokens(action, estimate_tokens(text)), args.max_tokens or room)
        params = GenerationParams(max_tokens=limit, temperature=args.temperature, seed=args.seed)
        try:
            reply, stats = engine.generate(messages, params)
        except AskFailed as failed:
            return _fail(failed.error, EXIT_GENERATE, args.debug)
        if engine.interrupted:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        result = clean_reply(reply, action, source=text)
        if action is WriteAction.CONTINUE:
            result = text + continuation_glue(text, result)
        out.write(result)
        _end_line(out, result)
        if args.verbose:
            print(describe_stats(stats, engine.load_seconds), file=sys.stderr)
        return EXIT_OK

    return job
