"""Every bad model file a user can pick gives a ModelLoadError naming the cause (never a crash or a
traceback), a failed load leaves a loaded model working, and odd paths load fine."""

from __future__ import annotations

import threading

import pytest

from lmdesk.backends import load_backend
from lmdesk.core.errors import ModelLoadError
from lmdesk.core.messages import ChatMessage as M
from lmdesk.core.params import GenerationParams, LoadOptions
from lmdesk.core.stats import GenerationStats
from tests import model_files as mf

SHORT = GenerationParams(max_tokens=8, temperature=0.0)


@pytest.fixture(scope="module")
def good(embedded_model_path):
    b = load_backend("llama", embedded_model_path)
    yield b
    b.close()


def reply(backend) -> GenerationStats:
    out = list(backend.generate([M("user", "Say hi.")], SHORT, threading.Event()))
    assert "".join(x for x in out if isinstance(x, str)).strip()
    return out[-1]


CASES = {
    "missing": (lambda d: mf.missing_path(d), ["model file not found", "does-not-exist.gguf"]),
    "directory": (lambda d: mf.make_directory(d), ["is a folder"]),
    "empty": (lambda d: mf.make_empty(d), ["empty.gguf is empty"]),
    "png": (lambda d: mf.make_png(d), ["picture.gguf is a PNG image, not a GGUF model"]),
    "random": (lambda d: mf.make_random_bytes(d), ["random.gguf is not a GGUF model file (bad magic bytes)"]),
    "corrupt_header": (lambda d: mf.make_corrupt_header_gguf(d), ["corrupt.gguf", "corrupt header"]),
    "truncated": (lambda d: mf.make_truncated_gguf(d), ["truncated.gguf is truncated"]),
    "unsupported_arch": (
        lambda d: mf.make_unsupported_arch_gguf(d),
        ["notanarch.gguf", "architecture 'notanarch' is not supported by llama.cpp"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_is_a_clear_error_and_the_loaded_model_keeps_working(case, good, tmp_path, capfd):
    make, fragments = CASES[case]
    path = make(tmp_path)
    progress: list[float] = []
    with pytest.raises(ModelLoadError) as err:
        load_backend("llama", str(path), LoadOptions(), progress.append)
    text = err.value.user_text()
    for frag in fragments:
        assert frag in text, text
    assert "\n" not in text
    assert "Traceback" not in capfd.readouterr().err
    assert reply(good).stop_reason in ("stop", "length")


def test_unsupported_arch_is_reported_by_llama_cpp_itself(tmp_path, monkeypatch):
    # Even for an architecture our gguf package knows, the reason comes from llama.cpp's own log.
    from lmdesk.backends import llamacpp_loading

    monkeypatch.setattr(llamacpp_loading, "is_known_architecture", lambda arch: True)
    with pytest.raises(ModelLoadError, match="architecture 'notanarch' is not supported by llama.cpp"):
        load_backend("llama", str(mf.make_unsupported_arch_gguf(tmp_path)))


def test_truncated_past_header_check_maps_llama_cpp_error(tmp_path, monkeypatch, embedded_model_path):
    # Skip our own size check to prove llama.cpp's failure is mapped too (not a raw ValueError).
    from lmdesk.backends import llamacpp
    from lmdesk.core.modelfiles.gguf_info import read_gguf_info

    info = read_gguf_info(embedded_model_path)
    bad = mf.make_truncated_gguf(tmp_path)
    monkeypatch.setattr(llamacpp, "read_gguf_info", lambda p: info)
    with pytest.raises(ModelLoadError) as err:
        load_backend("llama", str(bad))
    assert "truncated.gguf" in err.value.message and "corrupted or incomplete" in err.value.message


def test_bad_lora_adapters(tmp_path, embedded_model_path):
    with pytest.raises(ModelLoadError, match="LoRA adapter not found"):
        load_backend("llama", embedded_model_path, LoadOptions(lora_path=str(tmp_path / "none.gguf")))
    with pytest.raises(ModelLoadError, match="LoRA adapter: random.gguf is not a GGUF"):
        load_backend("llama", embedded_model_path, LoadOptions(lora_path=str(mf.make_random_bytes(tmp_path))))
    with pytest.raises(ModelLoadError, match="is a full model, not a LoRA adapter"):
        load_backend("llama", embedded_model_path, LoadOptions(lora_path=embedded_model_path))
    wrong = mf.make_lora_gguf(tmp_path, "wrong-size-lora.gguf", dim=100)
    with pytest.raises(ModelLoadError, match="could not load the LoRA adapter wrong-size-lora.gguf"):
        load_backend("llama", embedded_model_path, LoadOptions(lora_path=str(wrong)))


def test_lora_adapter_is_applied(tmp_path, embedded_model_path):
    lora = mf.make_lora_gguf(tmp_path)  # a zero adapter: same output as the base model
    # Both models fresh, so both evaluate the same prompt from an empty KV cache in one batch:
    # only then does llama.cpp promise the same floats (a shared model's cache state would not).
    base = load_backend("llama", embedded_model_path)
    b = load_backend("llama", embedded_model_path, LoadOptions(lora_path=str(lora)))
    try:
        assert b._llm._lora_adapter
        def text(backend):
            out = backend.generate([M("user", "Say hi.")], SHORT, threading.Event())
            return "".join(x for x in out if isinstance(x, str))
        assert text(b) == text(base)
    finally:
        b.close()
        base.close()


def test_cancelled_load(embedded_model_path):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ModelLoadError, match="cancelled"):
        load_backend("llama", embedded_model_path, cancel=cancel)


def test_path_with_spaces_and_non_ascii_loads_and_generates(tmp_path, embedded_model_path):
    odd = mf.place_model_copy(tmp_path, embedded_model_path)
    assert " " in str(odd) and "è" in str(odd) and "模型" in str(odd)
    progress: list[float] = []
    b = load_backend("llama", str(odd), LoadOptions(n_ctx=512), progress.append)
    try:
        assert progress[0] == 0.0 and progress[-1] == 1.0 and progress == sorted(progress)
        assert b.model_path == str(odd)
        assert reply(b).generated_tokens > 0
    finally:
        b.close()
