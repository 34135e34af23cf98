"""`lmdesk translate`: the Translate pane, headless.

Uses the pane's chunking and prompts (lmdesk.core.translate.plan) and prints the output chunk by
chunk as each one is done, so the structure (paragraphs, blank lines, headings, list markers) is
the source's. Same options, exit codes and error lines as `lmdesk ask`.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from lmdesk.cli.common import (
    EXIT_BROKEN_PIPE, EXIT_GENERATE, EXIT_OK, EXIT_USAGE, ModelSession, UsageError, add_text_options, end_line,
    interrupted, read_input, silence_stdout,
    utf8_safe,
)
from lmdesk.config import Paths
from lmdesk.core.errors import ContextOverflowError, LmdeskError
from lmdesk.core.text.languages import AUTO, find_language
from lmdesk.core.translate.glossary import parse_glossary

if TYPE_CHECKING:  # the planner is imported when the command runs, not when the GUI starts
    from lmdesk.core.translate.plan import TranslateOptions

_LANGUAGE_HINT = "use a code or English name such as en, zh-Hans, ja, ar, de or 'Spanish'"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `translate` on the `lmdesk` subparsers."""
    tr = sub.add_parser("translate", help="translate a text of any length, keeping its structure")
    add_text_options(tr, default_temperature=0.2)
    tr.add_argument("--to", required=True, metavar="LANG", help="target language (code or English name)")
    tr.add_argument("--from", dest="source", default=AUTO, metavar="LANG",
                    help="source language (default: detect it)")
    tr.add_argument("--glossary", metavar="FILE", help="lines 'term = translation', or a bare term to keep")


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run `lmdesk translate`; returns the exit code."""
    try:
        text = read_input(args.file)
        options = translate_options(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = utf8_safe(sys.stdout)
    with ModelSession(paths) as session:
        code = session.open_model(args)
        if code is not None:
            return code
        try:
            return _translate(session, args, text, options, out)
        except BrokenPipeError:  # `lmdesk translate … | head`: the reader has gone
            silence_stdout()
            return EXIT_BROKEN_PIPE


def translate_options(args: argparse.Namespace) -> TranslateOptions:
    """The TranslateOptions of the command line; UsageError for an unknown language or glossary."""
    from lmdesk.core.translate.plan import TranslateOptions

    target = _language(args.to, "target")
    if target == AUTO:
        raise UsageError("--to needs a language, not 'auto'")
    glossary = ()
    if args.glossary:
        glossary = tuple(parse_glossary(read_input(args.glossary)))
    return TranslateOptions(target=target, source=_language(args.source, "source"), glossary=glossary,
                            temperature=args.temperature, seed=args.seed, max_tokens_cap=args.max_tokens)


def _language(value: str, what: str) -> str:
    if value == AUTO:
        return AUTO
    lang = find_language(value)
    if lang is None:
        raise UsageError(f"unknown {what} language {value!r} ({_LANGUAGE_HINT})")
    return lang.code


def _translate(session: ModelSession, args: argparse.Namespace, text: str, options: TranslateOptions,
               out: TextIO) -> int:
    from lmdesk.core.translate.plan import plan_translation

    assert session.model is not None
    try:
        plan = plan_translation(text, session.model.context_length, options)
    except (LmdeskError, ValueError) as exc:
        error = exc if isinstance(exc, LmdeskError) else ContextOverflowError(str(exc))
        return session.fail(error, EXIT_GENERATE, args.debug)
    if args.verbose and plan.detected:
        print(f"detected source language: {plan.detected}", file=sys.stderr)
    printed = ""
    tokens, seconds = 0, 0.0
    while (index := plan.next_index()) is not None and not session.interrupted:
        if args.verbose:
            print(f"chunk {plan.ordinal(index)} of {plan.total}", file=sys.stderr)
        try:
            reply = session.generate(plan.messages(index), plan.params(index)).result()
        except LmdeskError as exc:
            end_line(out, printed)
            return session.fail(exc, EXIT_GENERATE, args.debug)
        if reply.cancelled:
            break
        tokens += reply.stats.generated_tokens
        seconds += reply.stats.generation_seconds
        plan.accept(index, reply.text)
        printed = _print_new(out, printed, plan.output(partial=True))
    if session.interrupted:
        end_line(out, printed)
        return interrupted()
    printed = _print_new(out, printed, plan.output(partial=False))
    end_line(out, printed)
    if args.verbose:
        rate = tokens / seconds if seconds else 0.0
        print(f"{plan.total} chunks, {tokens} tokens at {rate:.1f} tok/s, load {session.load_seconds:.2f} s",
              file=sys.stderr)
    return EXIT_OK


def _print_new(out: TextIO, printed: str, full: str) -> str:
    """Write what `full` adds to what is already printed; returns the new printed text."""
    if full.startswith(printed) and len(full) > len(printed):
        out.write(full[len(printed):])
        out.flush()
        return full
    return printed
