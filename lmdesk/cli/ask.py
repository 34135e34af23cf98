"""`lmdesk ask`: answer one prompt on stdout, streamed as it is generated.

Text is printed on the main thread as the job yields it. Ctrl+C cancels the generation: the output
stops at a token boundary, what was printed stays, and the command exits 130.
"""

from __future__ import annotations

import argparse
import sys

from lmdesk.cli.common import (
    EXIT_BROKEN_PIPE, EXIT_GENERATE, EXIT_OK, EXIT_USAGE, ModelSession, add_model_options, describe_stats,
    UsageError, check_text,
    end_line, interrupted, positive_int, read_stdin, silence_stdout, temperature, utf8_safe,
)
from lmdesk.config import Paths
from lmdesk.core.errors import LmdeskError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `ask` on the `lmdesk` subparsers."""
    ask = sub.add_parser("ask", help="answer one prompt on stdout, streamed as it is generated")
    add_model_options(ask, argparse.SUPPRESS)  # accepted after the command too, without clobbering
    ask.add_argument("prompt", metavar="PROMPT", help="the prompt, or - to read it from stdin")
    ask.add_argument("--system", metavar="TEXT", help="a system prompt")
    ask.add_argument("--max-tokens", type=positive_int, default=512, metavar="N")
    ask.add_argument("--temperature", type=temperature, default=0.7, metavar="T")
    ask.add_argument("--seed", type=int, default=None, metavar="S")
    ask.add_argument("--ctx", type=positive_int, default=None, metavar="N", help="context size in tokens")
    ask.add_argument("-v", "--verbose", action="store_true", help="print speed figures on stderr")


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run `lmdesk ask`; returns the exit code."""
    try:
        prompt = read_stdin("the prompt from stdin") if args.prompt == "-" else check_text(args.prompt, "the prompt")
        if args.system:
            check_text(args.system, "the system prompt")
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not prompt.strip():
        print("error: the prompt is empty", file=sys.stderr)
        return EXIT_USAGE
    messages = ([ChatMessage("system", args.system)] if args.system else []) + [ChatMessage("user", prompt)]
    params = GenerationParams(max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed)
    out = utf8_safe(sys.stdout)
    with ModelSession(paths) as session:
        code = session.open_model(args)
        if code is not None:
            if session.interrupted:
                end_line(out, "")
            return code
        job = session.generate(messages, params)
        try:
            for piece in job:
                out.write(piece)
                out.flush()
        except LmdeskError as exc:
            end_line(out)
            return session.fail(exc, EXIT_GENERATE, args.debug)
        except BrokenPipeError:  # `lmdesk ask … | head`: the reader has gone; say nothing more
            silence_stdout()
            return EXIT_BROKEN_PIPE
        reply = job.result()
    end_line(out, reply.text)
    if args.verbose and reply.stats is not None:
        print(describe_stats(reply.stats, session.load_seconds), file=sys.stderr)
    if session.interrupted:
        return interrupted()
    return EXIT_OK
