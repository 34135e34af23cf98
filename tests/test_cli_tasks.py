"""`lmdesk translate` and `lmdesk write`, run as real subprocesses on the real embedded model.

The model is tiny: these tests check structure, exit codes and error lines, never quality."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lmdesk.core.translate.plan import paragraphs
from tests import model_files as mf

ROOT = Path(__file__).resolve().parents[1]
ZH = "今天天气很好，我们去公园散步。\n\n孩子们在草地上玩耍。\n\n老人们在树下下棋，很开心。\n"
QUICK = ("--temperature", "0", "--seed", "1", "--max-tokens", "40")


def run(home: Path, *args: str, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LMDESK_DEFAULT_MODEL", "PYTHONWARNINGS")}
    env.update(LMDESK_HOME=str(home), PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "lmdesk", *args], input=stdin, capture_output=True, text=True,
        encoding="utf-8", env=env, cwd=home.parent, timeout=timeout,
    )


def one_error_line(proc: subprocess.CompletedProcess, *must_contain: str) -> None:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for text in must_contain:
        assert text in lines[0], lines[0]


def test_translate_a_file_keeps_paragraphs(lmdesk_home, tmp_path):
    src = tmp_path / "zh.txt"
    src.write_text(ZH, encoding="utf-8")
    proc = run(lmdesk_home, "translate", "--to", "en", str(src), *QUICK)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert len(paragraphs(proc.stdout)) == 3
    assert "\ufffd" not in proc.stdout and proc.stdout.endswith("\n") and not proc.stdout.endswith("\n\n")


def test_translate_stdin_keeps_markdown_markers_and_reports_progress(lmdesk_home):
    text = "# Shopping\n\n- apples\n- bread\n\nBuy them today.\n"
    proc = run(lmdesk_home, "translate", "--from", "en", "--to", "Spanish", "-v", "-", *QUICK, stdin=text)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(text.splitlines()), proc.stdout
    assert lines[0].startswith("# ") and lines[1] == ""
    assert lines[2].startswith("- ") and lines[3].startswith("- ") and lines[4] == ""
    assert "chunk 4 of 4" in proc.stderr and "tok/s" in proc.stderr and "tok/s" not in proc.stdout


def test_write_proofreads_stdin(lmdesk_home):
    proc = run(lmdesk_home, "write", "--action", "proofread", *QUICK, stdin="Their going too the park.\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() and proc.stdout.endswith("\n") and proc.stderr == ""


def test_write_continue_prints_the_text_and_its_continuation(lmdesk_home, tmp_path):
    src = tmp_path / "story.md"
    src.write_text("Once upon a time, a fox lived in the woods.", encoding="utf-8")
    proc = run(lmdesk_home, "write", "--action", "continue", str(src), *QUICK)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Once upon a time, a fox lived in the woods.")


def test_write_custom_instruction(lmdesk_home):
    proc = run(lmdesk_home, "write", "--action", "custom", "--instruction", "Make it shorter", *QUICK,
               stdin="This is a rather long sentence that could be shorter.")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_bad_arguments_exit_2_with_one_error_line(lmdesk_home, tmp_path):
    cases = [
        (("translate", "--to", "klingonese", "-"), "hello", "unknown target language"),
        (("translate", "--to", "fr", "--from", "elvish", "-"), "hello", "unknown source language"),
        (("translate", "--to", "fr", str(tmp_path / "missing.txt")), None, "cannot read"),
        (("translate", "--to", "fr", "-"), "  \n", "empty"),
        (("write", "--action", "poetry", "-"), "hello", "unknown action"),
        (("write", "--action", "custom", "-"), "hello", "--instruction"),
    ]
    for args, stdin, message in cases:
        proc = run(lmdesk_home, *args, stdin=stdin)
        assert proc.returncode == 2, (args, proc.stderr)
        one_error_line(proc, message)
    proc = run(lmdesk_home, "translate", "-", stdin="hello")  # --to is required: argparse's usage
    assert proc.returncode == 2 and "usage:" in proc.stderr and "Traceback" not in proc.stderr
    proc = run(lmdesk_home, "write", "--action", "rewrite", "--temperature", "9", "-", stdin="hello")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_bad_model_exits_3_naming_the_file(lmdesk_home, tmp_path):
    bad = mf.make_random_bytes(tmp_path)
    for args in (("translate", "--to", "fr"), ("write", "--action", "rewrite")):
        proc = run(lmdesk_home, *args, "--model", str(bad), "-", stdin="Hello there.")
        assert proc.returncode == 3, proc.stderr
        one_error_line(proc, "random.gguf")


def test_ctrl_c_while_loading_exits_130_not_3(lmdesk_home, monkeypatch, capsys):
    """Ctrl+C during the load cancels it: that is an interruption, not a bad model."""
    import io
    import signal
    import threading

    import lmdesk.backends.fake as fake
    from lmdesk.cli import build_parser
    from lmdesk.cli import common as cli_common
    from lmdesk.cli import write as cli_tasks
    from lmdesk.config import app_paths
    from lmdesk.core.errors import ModelLoadError

    def load_interrupted_by_the_user(path, options, progress, cancel: threading.Event):
        os.kill(os.getpid(), signal.SIGINT)  # the main thread's handler cancels this load
        assert cancel.wait(60)
        raise ModelLoadError("loading was cancelled")

    monkeypatch.setattr(fake, "load", load_interrupted_by_the_user)
    monkeypatch.setattr(cli_common, "resolve_model", lambda *_args: ("fake", "fake"))
    monkeypatch.setattr("sys.stdin", io.StringIO("Their going too the park."))
    args = build_parser().parse_args(["write", "--action", "proofread", "-"])
    assert cli_tasks.run(args, app_paths().ensure()) == 130
    assert capsys.readouterr().err == "interrupted\n"
