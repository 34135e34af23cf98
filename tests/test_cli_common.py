"""Ctrl+C in the `lmdesk` commands (lmdesk.cli.common), in-process on the scripted fake model."""

from __future__ import annotations

import os
import signal
import time

import pytest

from lmdesk.cli.common import CancelOnInterrupt, ModelSession
from lmdesk.config import app_paths
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams, LoadOptions

HI = [ChatMessage("user", "hi")]


def test_first_ctrl_c_cancels_the_job_at_a_token_and_a_second_stops_waiting():
    before = signal.getsignal(signal.SIGINT)
    with ModelSession(app_paths().ensure()) as session:
        session.load("fake", "fake:slow", LoadOptions())  # 40 pieces, 0.05 s apart
        job = session.generate(HI, GenerationParams(max_tokens=100))
        pieces = []
        for piece in job:
            pieces.append(piece)
            if len(pieces) == 3:
                os.kill(os.getpid(), signal.SIGINT)  # the handler runs on this (the main) thread
        reply = job.result(timeout=30)
        assert session.interrupted and reply.cancelled
        assert reply.text == "".join(pieces) and 3 <= len(pieces) < 40  # what was printed is kept
        later = session.generate(HI, GenerationParams(max_tokens=100))
        assert later.result(timeout=30).cancelled  # after Ctrl+C, nothing new runs
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(10)  # not reached: the second Ctrl+C is not polite
    assert signal.getsignal(signal.SIGINT) is before
    assert not session.engine.running


def test_ctrl_c_before_a_job_is_watched_cancels_it_when_it_is():
    with ModelSession(app_paths().ensure()) as session:
        session.load("fake", "fake:slow", LoadOptions())
        with CancelOnInterrupt() as ctrl_c:
            os.kill(os.getpid(), signal.SIGINT)
            job = ctrl_c.watch(session.engine.generate(HI, GenerationParams(max_tokens=100)))
            assert ctrl_c.hit and job.result(timeout=30).cancelled
