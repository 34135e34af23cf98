"""Bad input to the `lmdesk` commands: a clear usage error before any model loads, or a fast
context error, never a long wait or an internal error."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.test_cli import assert_one_error_line, lmdesk_env

MISSING_MODEL = "/nonexistent/never-loaded.gguf"  # loading it would fail with exit 3: input is checked first


def run_bytes(home, *args, stdin: bytes = b"", utf8_mode: bool = True) -> subprocess.CompletedProcess:
    """Run `lmdesk` with raw bytes on stdin, as a shell pipe gives them; in Python's UTF-8 mode
    (a C/POSIX locale, or PYTHONUTF8=1) stdin decodes invalid bytes to lone surrogates."""
    env = lmdesk_env(home)
    if utf8_mode:
        env.pop("PYTHONIOENCODING", None)
        env["PYTHONUTF8"] = "1"
    proc = subprocess.run([sys.executable, "-m", "lmdesk", *args], input=stdin, capture_output=True,
                          env=env, cwd=home.parent, timeout=120)
    proc.stderr = proc.stderr.decode("utf-8", errors="replace")
    return proc


INVALID = b"hello \xff\xfe\n"
COMMANDS = {
    "ask": ("ask", "--model", MISSING_MODEL, "-"),
    "translate": ("translate", "--model", MISSING_MODEL, "--to", "fr", "-"),
    "write": ("write", "--model", MISSING_MODEL, "--action", "shorten", "-"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("utf8_mode", [True, False])
def test_invalid_utf8_on_stdin_is_a_usage_error_before_loading(lmdesk_home, command, utf8_mode):
    proc = run_bytes(lmdesk_home, *COMMANDS[command], stdin=INVALID, utf8_mode=utf8_mode)
    assert proc.returncode == 2, proc.stderr
    assert_one_error_line(proc, "stdin", "not valid UTF-8", "offset 6")


@pytest.mark.parametrize("command", ["translate", "write"])
def test_a_file_with_invalid_utf8_is_a_usage_error_naming_it(lmdesk_home, tmp_path, command):
    path = tmp_path / "input.txt"
    path.write_bytes(b"caf\xc3\xa9 \xe9 au lait\n")
    args = COMMANDS[command][:-1] + (str(path),)
    proc = run_bytes(lmdesk_home, *args)
    assert proc.returncode == 2, proc.stderr
    assert_one_error_line(proc, str(path), "not valid UTF-8", "offset 6")


def test_an_invalid_prompt_argument_is_a_usage_error(lmdesk_home):
    env = lmdesk_env(lmdesk_home)
    proc = subprocess.run([os.fsencode(sys.executable), b"-m", b"lmdesk", b"ask", b"--model",
                           MISSING_MODEL.encode(), b"caf\xe9"], capture_output=True, env=env,
                          cwd=lmdesk_home.parent, timeout=120)
    proc.stderr = proc.stderr.decode("utf-8", errors="replace")
    assert proc.returncode == 2, proc.stderr
    assert_one_error_line(proc, "prompt", "not valid UTF-8", "offset 3")
