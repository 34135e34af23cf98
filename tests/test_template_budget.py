"""A model's chat template is untrusted code: one that renders nothing, loops forever or builds
huge strings ends in a clear GenerationError (or a cancelled reply after Stop), never in an
aborted process, a pinned core or an exhausted memory."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest

from lmdesk.core.errors import GenerationError
from lmdesk.core.messages import ChatMessage as M
from lmdesk.core.modelfiles.chat_template import render_chat
from lmdesk.core.params import GenerationParams
from tests import model_files as mf

ROOT = Path(__file__).resolve().parents[1]
EMPTY = "{% if false %}x{% endif %}"
LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
HUGE = "{{ ('x' * 1000000000)|length }}"


def finish_within(seconds: float, fn, *args, **kwargs):
    """fn's exception (or None) if it ends within `seconds`; fails the test if it is still running."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            fn(*args, **kwargs)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 — handed to the test
            outcome.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        pytest.fail(f"still running after {seconds} s")
    return outcome[0]


def test_a_template_that_renders_nothing_is_an_error_not_an_abort(tmp_path, lmdesk_home):
    model = mf.make_model_with_template(tmp_path, EMPTY)
    env = {k: v for k, v in os.environ.items() if k not in ("LMDESK_DEFAULT_MODEL", "PYTHONWARNINGS")}
    env.update(LMDESK_HOME=str(lmdesk_home), PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "lmdesk", "ask", "--model", str(model), "hi"],
        capture_output=True, text=True, encoding="utf-8", env=env, cwd=tmp_path, timeout=120, check=False,
    )
    assert proc.returncode == 4, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "chat template produced no prompt" in lines[0]
    assert "choose another model" in lines[0]


def test_render_chat_refuses_an_empty_prompt():
    with pytest.raises(GenerationError, match="produced no prompt"):
        render_chat([M("user", "hi")], EMPTY)


def test_a_looping_template_stops_at_the_time_limit():
    exc = finish_within(15, render_chat, [M("user", "hi")], LOOP, time_limit=1.0)
    assert isinstance(exc, GenerationError), exc
    assert "took longer than 1 s" in exc.message


def test_cancel_stops_a_looping_template():
    from lmdesk.core.modelfiles.chat_template import RenderCancelled

    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    exc = finish_within(15, render_chat, [M("user", "hi")], LOOP, cancel=cancel, time_limit=60)
    assert isinstance(exc, RenderCancelled), exc  # well before its 60 s time limit


def test_stop_during_rendering_is_a_cancelled_reply(tmp_path):
    from lmdesk.backends import load_backend

    backend = load_backend("llama", str(mf.make_model_with_template(tmp_path, LOOP)))
    try:
        cancel = threading.Event()
        threading.Timer(0.3, cancel.set).start()
        out: list = []
        exc = finish_within(15, lambda: out.extend(backend.generate([M("user", "hi")], GenerationParams(), cancel)))
        assert exc is None, exc
        assert len(out) == 1 and out[0].stop_reason == "cancelled"
    finally:
        backend.close()


@pytest.mark.parametrize(
    "template",
    [
        HUGE,
        "{{ ([0] * 100000000)|length }}",
        "{% set s = 'x' * 3000000 %}{{ (s + s)|length }}",
        ("{% set ns = namespace(s='x') %}{% for i in range(27) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
         "{{ ns.s|length }}"),
        "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}",  # a 10 MB prompt
    ],
)
def test_templates_cannot_build_huge_values(template):
    tracemalloc.start()
    try:
        with pytest.raises(GenerationError, match="longer than 4,000,000 characters"):
            render_chat([M("user", "hi")], template)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024, peak


def test_loading_a_model_never_compiles_its_template_elsewhere(tmp_path):
    """llama-cpp-python compiles a file's templates with constant folding when it opens it: the
    backend keeps it from doing so, so a template bomb costs nothing at load, and rendering it in
    lmdesk's sandbox is refused."""
    from lmdesk.backends import load_backend

    path = mf.make_model_with_template(tmp_path, HUGE)
    tracemalloc.start()
    try:
        backend = load_backend("llama", str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    try:
        # ~100 MB is llama-cpp-python's own logits buffer; the folded constant alone would be 1 GB.
        assert peak < 400 * 1024 * 1024, peak
        with pytest.raises(GenerationError, match="longer than 4,000,000 characters"):
            list(backend.generate([M("user", "hi")], GenerationParams(max_tokens=4), threading.Event()))
    finally:
        backend.close()


def test_real_templates_are_unaffected_by_the_budget():
    text = render_chat([M("user", "hi"), M("assistant", "yo")] * 50, None)
    assert text.count("<|im_start|>") == 101
