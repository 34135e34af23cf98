"""`lmdesk write`: the Write pane's actions, headless, on a whole text.

The text is the pane's document with everything selected, and the run is prepared and finished by
the same code as the pane's (lmdesk.core.write.run): same prompt, same token budget, same cleaning
of the reply. The whole document is printed with the action applied (for `continue`, the text
followed by its continuation) once the answer is complete, since cleaning needs all of it.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from lmdesk.cli.common import (
    EXIT_BROKEN_PIPE, EXIT_GENERATE, EXIT_OK, EXIT_USAGE, ModelSession, UsageError, add_text_options,
    check_text, describe_stats, end_line, interrupted, read_input,
    silence_stdout, utf8_safe,
)
from lmdesk.config import Paths
from lmdesk.core.errors import ContextOverflowError, LmdeskError
from lmdesk.core.write.actions import ACTIONS, WriteAction, parse_action

if TYPE_CHECKING:  # the run logic is imported when the command runs, not when the GUI starts
    from lmdesk.core.write.run import ActionRun


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `write` on the `lmdesk` subparsers."""
    write = sub.add_parser("write", help="rewrite, proofread, shorten, … a text (the Write pane's actions)")
    add_text_options(write, default_temperature=0.5)
    names = ", ".join(a.value for a in WriteAction)
    write.add_argument("--action", required=True, metavar="NAME", help=f"one of: {names}")
    write.add_argument("--instruction", metavar="TEXT", default="", help="the instruction of --action custom")


def chosen_action(args: argparse.Namespace) -> WriteAction:
    """The --action (with its --instruction when it needs one); UsageError otherwise."""
    try:
        action = parse_action(args.action)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if ACTIONS[action].needs_instruction and not args.instruction.strip():
        raise UsageError("--action custom needs --instruction TEXT")
    check_text(args.instruction, "--instruction")
    return action


def prepare(args: argparse.Namespace, action: WriteAction, text: str, context_length: int) -> ActionRun:
    """The run of `action` on the whole `text`, as the pane prepares it with everything selected
    (--max-tokens caps the answer on top). Raises ActionError / TextTooLongError."""
    from lmdesk.core.write.run import prepare_action

    return prepare_action(
        action, text, 0, len(text), n_ctx=context_length, instruction=args.instruction,
        temperature=args.temperature, seed=args.seed, max_tokens=args.max_tokens,
    )


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run `lmdesk write`; returns the exit code."""
    from lmdesk.core.write.run import ActionError, TextTooLongError

    try:
        text = read_input(args.file)
        action = chosen_action(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = utf8_safe(sys.stdout)
    with ModelSession(paths) as session:
        code = session.open_model(args)
        if code is not None:
            return code
        assert session.model is not None
        try:
            action_run = prepare(args, action, text, session.model.context_length)
        except TextTooLongError as exc:
            error = ContextOverflowError(
                f"the text (about {exc.prompt_tokens:,} tokens) is too long for the model's context "
                f"({exc.context_length:,} tokens)",
                "split it, or load the model with a larger context (--ctx)",
            )
            return session.fail(error, EXIT_GENERATE, args.debug)
        except ActionError as exc:
            session.close()
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        job = session.generate(action_run.messages, action_run.params)
        try:
            reply = job.result()
        except LmdeskError as exc:
            return session.fail(exc, EXIT_GENERATE, args.debug)
    if session.interrupted:
        return interrupted()
    action_run.pieces.append(reply.text)
    action_run.finish(reply.stats.stop_reason)
    document = action_run.applied_to(text)
    try:
        out.write(document)
    except BrokenPipeError:  # `lmdesk write … | head`: the reader has gone
        silence_stdout()
        return EXIT_BROKEN_PIPE
    end_line(out, document)
    if args.verbose:
        print(describe_stats(reply.stats, session.load_seconds), file=sys.stderr)
    return EXIT_OK
