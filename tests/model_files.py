"""Builders of bad (and oddly placed) model files, shared by the backend, discovery and CLI tests.

Each function writes a real file under the folder it is given and returns its path. None of them
needs the network; the truncated and relocated copies start from the real embedded model.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import gguf

NON_ASCII_DIR = "Modèles 模型"
NON_ASCII_NAME = "my model.gguf"


def make_empty(folder: Path, name: str = "empty.gguf") -> Path:
    """A zero-byte file named like a model."""
    p = Path(folder) / name
    p.write_bytes(b"")
    return p


def make_random_bytes(folder: Path, name: str = "random.gguf", size: int = 64 * 1024, seed: int = 7) -> Path:
    """Random bytes named .gguf (bad magic)."""
    import random

    p = Path(folder) / name
    p.write_bytes(random.Random(seed).randbytes(size))
    return p


def make_png(folder: Path, name: str = "picture.gguf") -> Path:
    """A real (1×1 pixel) PNG image, named like a model."""
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )
    p = Path(folder) / name
    p.write_bytes(png)
    return p


def _real_model(real_model: str | Path | None) -> Path:
    from lmdesk.core.modelfiles.discovery import embedded_model_path

    return Path(real_model) if real_model is not None else embedded_model_path()


def make_truncated_gguf(folder: Path, real_model: str | Path | None = None, name: str = "truncated.gguf",
                        keep_data_bytes: int = 1 << 20) -> Path:
    """A real model's header and the first `keep_data_bytes` of its tensor data (a cut download).

    `real_model` defaults to the embedded model.
    """
    from lmdesk.core.modelfiles.gguf_info import read_gguf_info

    real_model = _real_model(real_model)
    info = read_gguf_info(real_model)
    keep = min(info.file_size - 1, info.data_offset + keep_data_bytes)
    p = Path(folder) / name
    with open(real_model, "rb") as src, open(p, "wb") as dst:
        dst.write(src.read(keep))
    return p


def make_tiny_gguf(folder: Path, name: str = "tiny.gguf", arch: str = "llama", context_length: int = 256,
                   chat_template: str | None = None) -> Path:
    """A tiny, structurally valid GGUF (one 4×8 f32 tensor): enough for metadata and discovery."""
    import numpy as np

    p = Path(folder) / name
    p.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(p), arch)
    writer.add_name(f"Tiny {arch}")
    writer.add_context_length(context_length)
    writer.add_block_count(1)
    writer.add_embedding_length(8)
    writer.add_head_count(1)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return p


def make_unsupported_arch_gguf(folder: Path, name: str = "notanarch.gguf", arch: str = "notanarch") -> Path:
    """A tiny, structurally valid GGUF whose architecture llama.cpp does not know."""
    return make_tiny_gguf(folder, name, arch=arch)


def make_corrupt_header_gguf(folder: Path, name: str = "corrupt.gguf") -> Path:
    """Right magic and version, then garbage: a header that cannot be parsed."""
    import random

    p = Path(folder) / name
    p.write_bytes(b"GGUF" + struct.pack("<I", 3) + struct.pack("<QQ", 5, 9) + random.Random(3).randbytes(4096))
    return p


def make_directory(folder: Path, name: str = "a folder.gguf") -> Path:
    """A folder where a model file is expected."""
    p = Path(folder) / name
    p.mkdir(parents=True, exist_ok=True)
    return p


def missing_path(folder: Path, name: str = "does-not-exist.gguf") -> Path:
    """A path that does not exist."""
    return Path(folder) / name


def place_model_copy(folder: Path, real_model: str | Path | None = None, subdir: str = NON_ASCII_DIR,
                     name: str = NON_ASCII_NAME) -> Path:
    """A real model (default: the embedded one) at a path with spaces and non-ASCII characters.

    A hard link where possible: a real directory entry with the odd name (unlike a symlink, nothing resolves
    it back to the original path), and costs no disk; a copy is the fallback across filesystems.
    """
    real_model = _real_model(real_model)
    target = Path(folder) / subdir
    target.mkdir(parents=True, exist_ok=True)
    p = target / name
    if not p.exists():
        try:
            os.link(real_model, p)
        except OSError:
            shutil.copyfile(real_model, p)
    return p


def make_lora_gguf(folder: Path, name: str = "zero-lora.gguf", dim: int = 576, rank: int = 4) -> Path:
    """A real LoRA adapter GGUF for layer 0's attn_q of a `dim`-wide llama model.

    lora_b is zero, so with the right `dim` (576: the embedded model) the adapter changes nothing;
    any other `dim` does not fit the model and llama.cpp must refuse it.
    """
    import numpy as np

    p = Path(folder) / name
    writer = gguf.GGUFWriter(str(p), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(rank))
    rng = np.random.default_rng(0)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", rng.standard_normal((rank, dim)).astype(np.float32))
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((dim, rank), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return p


def make_model_with_template(folder: Path, template: str, real_model: str | Path | None = None,
                             name: str = "templated.gguf") -> Path:
    """A copy of a real model (the embedded one by default) whose chat template is `template`."""
    import subprocess
    import sys

    p = Path(folder) / name
    subprocess.run(
        [sys.executable, "-m", "gguf.scripts.gguf_new_metadata", "--chat-template", template, "--force",
         str(_real_model(real_model)), str(p)],
        check=True, capture_output=True, timeout=300,
    )
    return p
