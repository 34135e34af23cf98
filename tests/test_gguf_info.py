"""GGUF metadata and validation, on the real embedded model and on real bad files."""

from __future__ import annotations

import os
import struct

import pytest

from tests import model_files as mf
from lmdesk.core.errors import ModelLoadError
from lmdesk.core.modelfiles.gguf_info import estimate_ram, is_known_architecture, read_gguf_info


def test_real_model_metadata(embedded_model_path):
    info = read_gguf_info(embedded_model_path)
    assert info.architecture == "llama"
    assert info.quantization == "Q4_1"
    assert info.context_length == 8192
    assert info.size_label == "135M"
    assert 130_000_000 < info.parameter_count < 140_000_000  # from the tensor shapes
    assert info.bos_token == "<|im_start|>" and info.eos_token == "<|im_end|>"
    assert info.add_bos_token is False
    assert "<|im_start|>" in info.chat_template
    assert info.file_size == os.path.getsize(embedded_model_path)
    assert info.est_ram_bytes > info.file_size
    assert "tokenizer.ggml.merges" not in info.metadata  # big arrays are skipped, not decoded


def test_estimate_ram_grows_with_context_and_caps_at_trained(embedded_model_path):
    info = read_gguf_info(embedded_model_path)
    small, big = estimate_ram(info, 512), estimate_ram(info, 8192)
    assert small < big
    # 30 layers × 3 KV heads × (64 + 64) dims × 2 bytes (f16)
    assert info.kv_bytes_per_token == 30 * 3 * 128 * 2
    assert big - small == info.kv_bytes_per_token * (8192 - 512)
    assert estimate_ram(info, 100_000) == big  # never more than the trained context


def test_non_ascii_path_reads(embedded_model_path, tmp_path):
    p = mf.place_model_copy(tmp_path, embedded_model_path)
    assert " " in str(p) and "模型" in str(p)
    assert read_gguf_info(p).quantization == "Q4_1"


def test_tiny_written_gguf_reads(tmp_path):
    info = read_gguf_info(mf.make_tiny_gguf(tmp_path, chat_template="{{ messages }}"))
    assert info.architecture == "llama"
    assert info.parameter_count == 32
    assert info.quantization == "F32"
    assert info.chat_template == "{{ messages }}"
    assert info.bos_token is None


def _expect(path, *fragments):
    with pytest.raises(ModelLoadError) as err:
        read_gguf_info(path)
    text = err.value.user_text()
    assert "\n" not in text
    for frag in fragments:
        assert frag in text, text
    return err.value


def test_missing(tmp_path):
    _expect(mf.missing_path(tmp_path), "not found", "does-not-exist.gguf")


def test_directory(tmp_path):
    _expect(mf.make_directory(tmp_path), "is a folder")


def test_empty(tmp_path):
    _expect(mf.make_empty(tmp_path), "empty.gguf", "empty (0 bytes)")


def test_png(tmp_path):
    _expect(mf.make_png(tmp_path), "picture.gguf is a PNG image, not a GGUF model")


def test_random_bytes(tmp_path):
    _expect(mf.make_random_bytes(tmp_path), "random.gguf", "not a GGUF model file (bad magic bytes)")


def test_corrupt_header(tmp_path):
    _expect(mf.make_corrupt_header_gguf(tmp_path), "corrupt.gguf", "corrupt header")


def test_truncated(embedded_model_path, tmp_path):
    err = _expect(mf.make_truncated_gguf(tmp_path, embedded_model_path), "truncated.gguf is truncated", "98,362,432")
    assert err.fix and "again" in err.fix


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n", "Git LFS pointer"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "HTML page"),
        (b"PK\x03\x04" + b"\0" * 100, "ZIP archive"),
        (b"ggjt" + b"\0" * 100, "old GGJT model"),
        (struct.pack("<Q", 20) + b'{"a": {"dtype": "F32"}}' + b"\0" * 64, "safetensors file"),
    ],
)
def test_other_formats_are_named(tmp_path, content, expected):
    p = tmp_path / "model.gguf"
    p.write_bytes(content)
    _expect(p, expected)


def test_unsupported_architecture_header_is_valid(tmp_path):
    # The header is fine; llama.cpp rejects it at load (see test_bad_models), and we can tell why.
    info = read_gguf_info(mf.make_unsupported_arch_gguf(tmp_path))
    assert info.architecture == "notanarch"
    assert not is_known_architecture("notanarch")
    assert is_known_architecture("llama")
