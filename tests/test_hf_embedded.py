"""The torch backend on the real embedded model (SmolLM2-135M GGUF), converted once per session."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from lmdesk.backends import load_backend
from lmdesk.backends.hf_convert import CACHE_ENV, MARKER, _drop_stale, cached_folder, ensure_converted
from lmdesk.core.messages import ChatMessage
from lmdesk.core.params import GenerationParams

pytestmark = pytest.mark.slow

FRANCE = [ChatMessage("user", "What is the capital of France?")]
CONVERSATIONS = [
    FRANCE,
    [ChatMessage("system", "You are a translator."), ChatMessage("user", "Traduis : « le café est prêt » 🙂")],
    [
        ChatMessage("user", "Hi!"),
        ChatMessage("assistant", "Hello! How can I help?"),
        ChatMessage("user", "Write a haiku about 東京 in spring.\n\nKeep it short."),
    ],
]


@dataclass
class Converted:
    """The session's conversion: where it lives and how long the first (converting) load took."""

    root: Path
    folder: Path
    first_load_seconds: float
    progress: list[float]


@pytest.fixture(scope="session")
def converted(tmp_path_factory, embedded_model_path) -> Converted:
    root = tmp_path_factory.mktemp("hf-gguf-cache")
    progress: list[float] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(root))
        started = time.perf_counter()
        backend = load_backend("torch", embedded_model_path, progress=progress.append)
        first = time.perf_counter() - started
        backend.close()
    return Converted(root, cached_folder(Path(embedded_model_path), root), first, progress)


@pytest.fixture
def torch_backend(converted, embedded_model_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(converted.root))
    b = load_backend("torch", embedded_model_path)
    yield b
    b.close()


def test_first_load_converts_with_progress(converted, embedded_model_path):
    assert (converted.folder / MARKER).is_file() and (converted.folder / "model.safetensors").is_file()
    marker = json.loads((converted.folder / MARKER).read_text())
    assert marker["path"] == str(Path(embedded_model_path).resolve()) and marker["dtype"] == "float32"
    p = converted.progress
    assert p == sorted(p) and p[-1] == 1.0 and len(p) >= 5
    assert not [d for d in converted.root.iterdir() if d.name.startswith(".")], "temporary folders left behind"


def test_second_load_uses_the_cache(converted, embedded_model_path, monkeypatch, capsys):
    monkeypatch.setenv(CACHE_ENV, str(converted.root))
    weights = converted.folder / "model.safetensors"
    before = (weights.stat().st_mtime_ns, weights.stat().st_ino)
    entries = sorted(converted.root.iterdir())
    started = time.perf_counter()
    b = load_backend("torch", embedded_model_path)
    second = time.perf_counter() - started
    try:
        assert b.model_path == embedded_model_path and b.folder.path == converted.folder
    finally:
        b.close()
    assert (weights.stat().st_mtime_ns, weights.stat().st_ino) == before, "the cached copy was rewritten"
    assert sorted(converted.root.iterdir()) == entries
    with capsys.disabled():  # a measurement, reported only (no timing assertions in tests)
        print(f"\n[hf cache] first load {converted.first_load_seconds:.2f} s, cached load {second:.2f} s, "
              f"ratio {second / converted.first_load_seconds:.3f}")


def test_cache_key_follows_the_file(tmp_path, embedded_model_path):
    link = tmp_path / "link.gguf"
    link.symlink_to(embedded_model_path)
    assert cached_folder(link, tmp_path) == cached_folder(Path(embedded_model_path), tmp_path)  # same file
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF" + bytes(60))
    a = cached_folder(fake, tmp_path)
    st = fake.stat()
    os.utime(fake, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert cached_folder(fake, tmp_path) != a  # a replaced or edited file is converted again


def test_stale_conversions_are_removed(tmp_path, converted, embedded_model_path):
    import shutil

    root = tmp_path / "cache"
    root.mkdir()
    stale = root / "old-conversion"
    stale.mkdir()
    (stale / MARKER).write_text(json.dumps({"path": str(Path(embedded_model_path).resolve())}))
    other = root / "other-model"
    other.mkdir()
    (other / MARKER).write_text(json.dumps({"path": "/elsewhere/model.gguf"}))
    fresh = cached_folder(Path(embedded_model_path), root)
    shutil.copytree(converted.folder, fresh)
    _drop_stale(root, fresh)  # what ensure_converted does after converting a changed file
    assert fresh.is_dir() and not stale.exists() and other.exists()
    assert ensure_converted(Path(embedded_model_path), lambda f: None, threading.Event(), root=root) == fresh


def test_greedy_capital_of_france_mentions_paris(torch_backend):
    items = list(torch_backend.generate(FRANCE, GenerationParams(max_tokens=40, temperature=0), threading.Event()))
    text, stats = "".join(items[:-1]), items[-1]
    assert "Paris" in text, text
    assert stats.generated_tokens > 0 and stats.prompt_tokens == torch_backend.count_tokens(FRANCE)


def test_same_prompt_token_ids_as_the_llama_backend(torch_backend, embedded_model_path):
    llama = load_backend("llama", embedded_model_path)
    try:
        for messages in CONVERSATIONS:
            expected = llama.tokenize_prompt(llama.render(messages))
            assert torch_backend.prompt_ids(messages) == expected, messages
            assert torch_backend.count_tokens(messages) == llama.count_tokens(messages)
    finally:
        llama.close()


def test_gpu_check_script_runs_on_cpu(converted, monkeypatch, tmp_path, capsys):
    """bench/gpu_check.py is meant for a GPU machine; its --device cpu mode keeps it working here."""
    import importlib.util

    monkeypatch.setenv(CACHE_ENV, str(converted.root))
    script = Path(__file__).resolve().parent.parent / "bench" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "gpu_check.json"
    assert module.main(["--device", "cpu", "--max-tokens", "6", "--rounds", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["tokens_per_run"] > 0 and result["lmdesk_tok_s"] > 0 and result["transformers_tok_s"] > 0
    assert result["same_text"] and result["device"] == "cpu" and result["peak_vram_bytes"] is None


def test_cancelled_conversion_leaves_nothing_behind(tmp_path, embedded_model_path):
    from lmdesk.core.errors import ModelLoadError

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ModelLoadError, match="cancelled"):
        ensure_converted(Path(embedded_model_path), lambda f: None, cancel, root=tmp_path)
    assert list(tmp_path.iterdir()) == []
