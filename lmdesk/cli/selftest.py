"""`lmdesk --self-test`: load the default (or given) model, generate a short reply, print tokens/s.

Exit 0 when the model produced text, 1 when anything failed (the error line says what), 130 on
Ctrl+C. Used by packaging checks: a bundle that passes this can load and run its model.
"""

from __future__ import annotations

import argparse
import sys

from lmdesk.cli.common import (
    EXIT_OK, EXIT_SELF_TEST, ModelSession, describe_stats, interrupted,
)
from lmdesk.config import Paths
from lmdesk.core.errors import LmdeskError
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams

SELF_TEST_PROMPT = "Say hello in one short sentence."


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run the self-test; returns the exit code."""
    with ModelSession(paths) as session:
        code = session.open_model(args, failure_code=EXIT_SELF_TEST, announce=lambda backend, path: print(
            f"self-test: loading {path} ({backend})", flush=True))
        if code is not None:
            return code
        job = session.generate([ChatMessage("user", SELF_TEST_PROMPT)],
                               GenerationParams(max_tokens=32, temperature=0.0, seed=0))
        try:
            reply = job.result()
        except LmdeskError as exc:
            return session.fail(exc, EXIT_SELF_TEST, args.debug)
    if session.interrupted:
        return interrupted()
    stats, model = reply.stats, session.model
    if stats is None or model is None or stats.generated_tokens == 0 or not reply.text.strip():
        print("error: self-test failed: the model generated no text", file=sys.stderr)
        return EXIT_SELF_TEST
    print(f"self-test: model {model.name} on {model.device}, context {model.context_length}")
    print(f"self-test: reply: {' '.join(reply.text.split())}")
    print(f"self-test: {describe_stats(stats, session.load_seconds)}")
    print(f"self-test ok: {stats.tokens_per_second:.1f} tok/s")
    return EXIT_OK
