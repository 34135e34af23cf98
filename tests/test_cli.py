"""The `lmdesk` command, run as a real subprocess (`python -m lmdesk`) on the real embedded model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from tests import model_files as mf

ROOT = Path(__file__).resolve().parents[1]
LONG_PROMPT = "Write a very long story about a dragon who lives in a mountain."


def lmdesk_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LMDESK_DEFAULT_MODEL", "PYTHONWARNINGS")}
    env.update(LMDESK_HOME=str(home), PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    return env


def run(home: Path, *args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lmdesk", *args],
        input=stdin, capture_output=True, text=True, encoding="utf-8", env=lmdesk_env(home),
        cwd=home.parent, timeout=timeout,
    )


def assert_one_error_line(proc: subprocess.CompletedProcess, *must_contain: str) -> str:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for text in must_contain:
        assert text in lines[0], lines[0]
    return lines[0]


# ---- ask ---------------------------------------------------------------------------------------


def test_ask_prints_the_reply_and_nothing_else(lmdesk_home):
    proc = run(lmdesk_home, "ask", "--max-tokens", "24", "--temperature", "0", "Say hello.")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() and proc.stdout.endswith("\n") and not proc.stdout.endswith("\n\n")
    assert "\ufffd" not in proc.stdout
    assert proc.stderr == ""  # no llama.cpp chatter, no logs without --debug


def test_ask_is_deterministic_with_a_seed_and_reads_stdin(lmdesk_home):
    args = ("--max-tokens", "16", "--temperature", "0.8", "--seed", "42")
    a = run(lmdesk_home, "ask", *args, "-", stdin="Name three colours.\n")
    b = run(lmdesk_home, "ask", *args, "Name three colours.\n")
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert a.stdout.strip() and a.stdout == b.stdout


def test_ask_verbose_puts_stats_on_stderr_only(lmdesk_home):
    proc = run(lmdesk_home, "ask", "-v", "--system", "You are terse.", "--ctx", "512",
               "--max-tokens", "8", "--temperature", "0", "Hi")
    assert proc.returncode == 0, proc.stderr
    assert "tok/s" in proc.stderr and "tok/s" not in proc.stdout
    assert "stop: " in proc.stderr


def test_ask_with_an_empty_prompt_is_a_usage_error(lmdesk_home):
    proc = run(lmdesk_home, "ask", "-", stdin="  \n")
    assert proc.returncode == 2
    assert_one_error_line(proc, "empty")


def test_ask_with_a_non_utf8_stdin_is_a_usage_error(lmdesk_home):
    proc = subprocess.run(
        [sys.executable, "-m", "lmdesk", "ask", "-"], input=b"caf\xe9 au lait\n", capture_output=True,
        env=lmdesk_env(lmdesk_home), cwd=lmdesk_home.parent, timeout=120,
    )
    proc.stderr = proc.stderr.decode("utf-8")
    assert proc.returncode == 2, proc.stderr
    assert_one_error_line(proc, "stdin")


def test_missing_prompt_is_argparse_usage(lmdesk_home):
    proc = run(lmdesk_home, "ask")
    assert proc.returncode == 2 and "usage:" in proc.stderr and "Traceback" not in proc.stderr


def test_sigint_cancels_cleanly_with_exit_130(lmdesk_home):
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmdesk", "ask", "--max-tokens", "4000", "--temperature", "0", LONG_PROMPT],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=lmdesk_env(lmdesk_home), cwd=lmdesk_home.parent,
    )
    try:
        # Raw reads: a buffered read here would swallow bytes that communicate() never sees.
        first = os.read(proc.stdout.fileno(), 64)  # text arrives while the model is still generating
        assert first, proc.stderr.read()
        time.sleep(0.3)  # let a few more tokens stream (not a timing assertion)
        assert proc.poll() is None, "generation ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = (first + rest).decode("utf-8")
    assert proc.returncode == 130, err
    assert err.decode() == "interrupted\n"  # no traceback, no KeyboardInterrupt
    assert out.endswith("\n") and len(out.strip()) > len(first.decode("utf-8", "ignore").strip())
    assert "\ufffd" not in out


# ---- models and self-test ------------------------------------------------------------------------


def test_models_lists_the_embedded_model(lmdesk_home, embedded_model_path):
    proc = run(lmdesk_home, "models")
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert header.split() == ["NAME", "BACKEND", "QUANT", "SIZE", "CONTEXT", "PATH"]
    row = next(r for r in rows if r.endswith(embedded_model_path))
    assert row.split()[:5] == ["SmolLM2-135M-Instruct.Q4_1", "llama", "Q4_1", "98.4", "MB"]


def test_models_shows_unreadable_files_with_their_error(lmdesk_home, tmp_path):
    bad = mf.make_random_bytes(tmp_path)
    lmdesk_home.joinpath("config").mkdir(parents=True)
    lmdesk_home.joinpath("config", "settings.json").write_text(json.dumps({"extra_model_paths": [str(bad)]}))
    proc = run(lmdesk_home, "models")
    assert proc.returncode == 0, proc.stderr
    (row,) = [r for r in proc.stdout.splitlines() if str(bad) in r]
    assert "(error:" in row and "random.gguf" in row


def test_self_test_passes_and_prints_speed(lmdesk_home):
    proc = run(lmdesk_home, "--self-test")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.splitlines()[-1]
    assert last.startswith("self-test ok: ") and last.endswith(" tok/s")
    assert float(last.split()[-2]) > 0


def test_self_test_fails_with_exit_1_on_a_bad_default_model(lmdesk_home, tmp_path):
    bad = mf.make_empty(tmp_path)
    env_home = lmdesk_home
    proc = subprocess.run(
        [sys.executable, "-m", "lmdesk", "--self-test"], capture_output=True, text=True,
        env={**lmdesk_env(env_home), "LMDESK_DEFAULT_MODEL": str(bad)}, timeout=120,
    )
    assert proc.returncode == 1
    assert_one_error_line(proc, "empty.gguf")


# ---- bad models and odd paths ----------------------------------------------------------------------

BAD_MODELS = {
    "missing": lambda d, real: mf.missing_path(d),
    "empty": lambda d, real: mf.make_empty(d),
    "truncated": lambda d, real: mf.make_truncated_gguf(d, real_model=real),
    "corrupt-header": lambda d, real: mf.make_corrupt_header_gguf(d),
    "random-bytes": lambda d, real: mf.make_random_bytes(d),
    "png": lambda d, real: mf.make_png(d),
    "directory": lambda d, real: mf.make_directory(d),
    "unsupported-architecture": lambda d, real: mf.make_unsupported_arch_gguf(d),
}


@pytest.mark.parametrize("kind", sorted(BAD_MODELS))
def test_bad_model_exits_3_with_one_line_naming_the_file(kind, lmdesk_home, tmp_path, embedded_model_path):
    bad = BAD_MODELS[kind](tmp_path, embedded_model_path)
    proc = run(lmdesk_home, "ask", "--model", str(bad), "--max-tokens", "4", "hi")
    assert proc.returncode == 3, proc.stderr
    assert_one_error_line(proc, bad.name)
    assert proc.stdout == ""


def test_debug_shows_the_traceback_of_a_bad_model(lmdesk_home, tmp_path):
    bad = mf.make_unsupported_arch_gguf(tmp_path)
    proc = run(lmdesk_home, "--debug", "ask", "--model", str(bad), "hi")
    assert proc.returncode == 3
    assert "Traceback" in proc.stderr and "ModelLoadError" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("error: ") and bad.name in proc.stderr.splitlines()[-1]


def test_model_path_with_spaces_and_non_ascii(lmdesk_home, tmp_path, embedded_model_path):
    odd = mf.place_model_copy(tmp_path, real_model=embedded_model_path)
    assert " " in str(odd) and not str(odd).isascii()
    proc = run(lmdesk_home, "ask", "--model", str(odd), "--max-tokens", "8", "--temperature", "0", "Hi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_model_chosen_by_name_from_the_models_folder(lmdesk_home, embedded_model_path):
    models = lmdesk_home / "data" / "models"
    mf.place_model_copy(models, real_model=embedded_model_path, subdir="Mes modèles", name="tiny chat.gguf")
    proc = run(lmdesk_home, "--model", "tiny chat", "ask", "--max-tokens", "4", "Hi")
    assert proc.returncode == 0, proc.stderr
    unknown = run(lmdesk_home, "ask", "--model", "no-such-model-anywhere", "Hi")
    assert unknown.returncode == 3
    assert_one_error_line(unknown, "no-such-model-anywhere")


def test_torch_backend_runs_a_transformers_folder(lmdesk_home, tmp_path):
    from tests.hf_models import build_tiny_llama

    folder = build_tiny_llama(tmp_path / "tiny llama")  # random weights: the text is noise
    proc = run(lmdesk_home, "ask", "--backend", "torch", "--model", str(folder), "--max-tokens", "6",
               "--seed", "1", "Hello")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() and "Traceback" not in proc.stderr


def test_remote_backend_is_a_clear_usage_error(lmdesk_home):
    proc = run(lmdesk_home, "ask", "--backend", "remote", "--model", "http://localhost:1/v1", "hi")
    assert proc.returncode == 2
    assert_one_error_line(proc, "remote")


def test_unknown_backend_is_rejected_by_argparse(lmdesk_home):
    proc = run(lmdesk_home, "ask", "--backend", "tensorflow", "hi")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


# ---- in-process: the GUI branch and the parser (no model, no Qt) ----------------------------------


def test_no_command_opens_the_gui_with_the_options(monkeypatch):
    from lmdesk import cli

    calls: list[dict] = []
    fake_app = types.ModuleType("lmdesk.ui.app")
    fake_app.run_gui = lambda **kw: calls.append(kw) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lmdesk.ui.app", fake_app)
    from lmdesk.config import app_paths

    assert cli.main(["--model", "x.gguf", "--backend", "llama", "--debug"]) == 0
    assert calls == [{"paths": app_paths(), "model": "x.gguf", "backend": "llama"}]
    assert cli.main([]) == 0
    assert calls[-1] == {"paths": app_paths(), "model": None, "backend": None}


def test_options_before_and_after_the_command_agree():
    from lmdesk.cli import build_parser

    parser = build_parser()
    before = parser.parse_args(["--model", "m", "--backend", "torch", "ask", "hi"])
    after = parser.parse_args(["ask", "--model", "m", "--backend", "torch", "hi"])
    assert (before.model, before.backend, before.debug) == (after.model, after.backend, after.debug) == (
        "m", "torch", False)


def test_human_size():
    from lmdesk.core.modelfiles.discovery import human_size

    assert [human_size(n) for n in (0, 999, 1500, 98_362_432, 7_000_000_000)] == [
        "0 B", "999 B", "1.5 KB", "98.4 MB", "7.0 GB"]
