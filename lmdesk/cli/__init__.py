"""The `lmdesk` command: no command opens the GUI; `ask`, `translate`, `write`, `models` and
`--self-test` run headless, each in a module of this package, on lmdesk.engine's Engine and jobs.

Exit codes: 0 ok, 1 self-test failed, 2 usage (argparse's own, an empty or unreadable input, an
unavailable backend), 3 the model could not be loaded, 4 generation failed, 130 interrupted by
Ctrl+C, 141 stdout closed by its reader. Errors are one line `error: …` on stderr; `--debug` adds
tracebacks and logs on stderr. PySide6 is imported only on the GUI branch, so headless commands
start fast and work without it.
"""

from __future__ import annotations

import argparse
import logging
import sys

from lmdesk import __version__
from lmdesk.cli import ask, models, selftest, translate, write
from lmdesk.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, add_model_options
from lmdesk.config import app_paths, setup_logging

__all__ = ["build_parser", "main"]

log = logging.getLogger("lmdesk.cli")

_COMMANDS = {"ask": ask.run, "translate": translate.run, "write": write.run, "models": models.run}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and shell-completion generators)."""
    parser = argparse.ArgumentParser(
        prog="lmdesk",
        description="Chat, write and translate with local language models. "
        "With no command, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"lmdesk {__version__}")
    add_model_options(parser, None)
    parser.add_argument("--self-test", action="store_true",
                        help="load the default model, generate a short reply, print tokens/s")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    ask.add_parser(sub)
    models.add_parser(sub)
    translate.add_parser(sub)
    write.add_parser(sub)
    return parser


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
    paths = app_paths()  # the one Paths of this run: everything below gets it from here
    try:
        paths.ensure()
        setup_logging(paths, args.debug)
    except OSError as exc:
        print(f"error: cannot create lmdesk's folders: {exc}", file=sys.stderr)
        if args.command is None and not args.self_test:  # the GUI: a dialog, not just stderr
            from lmdesk.ui.app import show_start_error

            show_start_error(f"lmdesk cannot create its folder {exc.filename or paths.data} ({exc.strerror or exc}) "
                             "— Move away what is in the way, or set LMDESK_HOME to a writable folder")
        return EXIT_USAGE
    log.debug("lmdesk %s: %s", __version__, sys.argv if argv is None else argv)

    if args.command is None and not args.self_test:
        from lmdesk.ui.app import run_gui  # the only branch that imports PySide6

        return run_gui(paths=paths, model=args.model, backend=args.backend)
    try:
        if args.self_test:
            return selftest.run(args, paths)
        return _COMMANDS[args.command](args, paths)
    except KeyboardInterrupt:  # a second Ctrl+C, or one outside a generation
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
