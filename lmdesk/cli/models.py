"""`lmdesk models`: a table of the models lmdesk can find, with the error of any it cannot read."""

from __future__ import annotations

import argparse
import sys

from lmdesk.cli.common import EXIT_OK, read_settings
from lmdesk.config import Paths


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `models` on the `lmdesk` subparsers."""
    models = sub.add_parser("models", help="list the models lmdesk can find")
    models.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Print the table on stdout ("no models found" on stderr when there are none); exit 0."""
    from lmdesk.core.modelfiles.discovery import discover_models, human_size  # reads GGUF headers

    found = discover_models(paths, read_settings(paths))
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
