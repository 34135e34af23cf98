"""Read and validate a GGUF model file's metadata without loading its weights.

The `gguf` package's GGUFReader builds a numpy view for every array element (the 49k-entry token
list alone), which takes ~2.4 s for the 93 MB embedded model here. Model discovery scans many
files, so this module parses the header itself with `struct` over an mmap (~0.05 s) and uses the
`gguf` package only for its tables (quantisation block sizes, file-type and architecture names),
imported when a file is first read: importing this module costs no numpy, so the GUI's start-up
does not pay for it.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmdesk.core.errors import ModelLoadError

log = logging.getLogger("lmdesk.models")

DEFAULT_N_CTX = 4096  # the context est_ram_bytes is computed for (LoadOptions' default)

# GGUF metadata value types (fixed by the GGUF specification). They are spelt out here rather
# than taken from the `gguf` package, which imports numpy (~0.3 s): lmdesk imports this module at
# start-up, and reads the package's larger tables only when it parses a file.
_STRING, _ARRAY = 8, 9
_SCALAR = {  # value type -> struct format
    0: "<B", 1: "<b",  # UINT8, INT8
    2: "<H", 3: "<h",  # UINT16, INT16
    4: "<I", 5: "<i",  # UINT32, INT32
    6: "<f", 7: "<?",  # FLOAT32, BOOL
    10: "<Q", 11: "<q",  # UINT64, INT64
    12: "<d",  # FLOAT64
}
# Arrays we keep (the rest, e.g. merges and scores, are skipped without decoding).
_KEEP_ARRAYS = {"tokenizer.ggml.tokens", "general.languages"}
_KEEP_PREFIX = (".head_count_kv", ".head_count")

# Magic bytes of files people mistake for models, with what to call them.
_KNOWN_MAGIC: tuple[tuple[bytes, str, str | None], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image", None),
    (b"\xff\xd8\xff", "a JPEG image", None),
    (b"GIF8", "a GIF image", None),
    (b"%PDF", "a PDF document", None),
    (b"PK\x03\x04", "a ZIP archive (perhaps a PyTorch checkpoint)",
     "for PyTorch/transformers models choose the folder with the torch backend"),
    (b"version https://git-lfs", "a Git LFS pointer, not the model itself",
     "run `git lfs pull` in its repository, or download the file again"),
    (b"<!DOCTYPE", "an HTML page (a failed download?)", "download the model file again"),
    (b"<html", "an HTML page (a failed download?)", "download the model file again"),
    (b"lmgg", "an old GGML model (pre-GGUF)", "convert it with llama.cpp's convert scripts or get a GGUF"),
    (b"ggjt", "an old GGJT model (pre-GGUF)", "convert it with llama.cpp's convert scripts or get a GGUF"),
    (b"ggmf", "an old GGMF model (pre-GGUF)", "convert it with llama.cpp's convert scripts or get a GGUF"),
)


@dataclass
class GGUFInfo:
    """What lmdesk needs to know about a GGUF model, read from its header."""

    path: str
    name: str
    architecture: str
    parameter_count: int
    quantization: str
    context_length: int | None
    chat_template: str | None
    bos_token: str | None
    eos_token: str | None
    add_bos_token: bool
    file_size: int
    est_ram_bytes: int = 0  # at DEFAULT_N_CTX (or the trained context if smaller); see estimate_ram
    size_label: str | None = None
    block_count: int = 0
    kv_bytes_per_token: int = 0  # f16 K+V cache bytes per context token
    data_offset: int = 0  # where tensor data starts (the header's size)
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)  # scalars + small arrays


def estimate_ram(info: GGUFInfo, n_ctx: int) -> int:
    """Rough RAM to run the model with `n_ctx` context: weights + f16 KV cache + scratch.

    Scratch (compute buffers, logits) is taken as 5 % of the weights but at least 64 MiB: a guess
    good enough to warn "this will not fit", not an exact figure.
    """
    if info.context_length:
        n_ctx = min(n_ctx, info.context_length)
    scratch = max(64 << 20, info.file_size // 20)
    return info.file_size + info.kv_bytes_per_token * n_ctx + scratch


def describe_non_file(p: Path) -> ModelLoadError | None:
    """The error for a path that is a broken link or not a regular file at all; None otherwise."""
    if p.is_symlink():
        try:
            p.resolve(strict=True)
        except RuntimeError:  # Python < 3.13 reports a loop this way
            return ModelLoadError(f"{p} is a symbolic link loop", "point the link at the model file")
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return ModelLoadError(f"{p} is a symbolic link loop", "point the link at the model file")
            return ModelLoadError(f"{p} is a link to {os.readlink(p)}, which does not exist",
                                  "point the link at the model file")
    try:
        mode = p.stat().st_mode
    except OSError:
        return None  # missing or unreadable: the caller's own checks say which
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        return None
    kind = ("a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
            "a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file")
    return ModelLoadError(f"{p} is not a regular file ({kind})", "give the path of a .gguf model file")


def read_gguf_info(path: str | os.PathLike[str]) -> GGUFInfo:
    """Validate `path` as a GGUF model and return its metadata; ModelLoadError if it is not one."""
    p = Path(path).expanduser()
    shown = p.name or str(p)
    not_a_file = describe_non_file(p)
    if not_a_file is not None:
        raise not_a_file
    if not p.exists():
        raise ModelLoadError(f"model file not found: {p}", "check the path, or run `lmdesk models` to list models")
    if p.is_dir():
        raise ModelLoadError(
            f"{p} is a folder, not a GGUF model file",
            "choose the .gguf file inside it, or use the torch backend for a transformers folder",
        )
    try:
        size = p.stat().st_size
        if size == 0:
            raise ModelLoadError(f"{shown} is empty (0 bytes)", "download or copy the model again")
        with open(p, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            _check_magic(mm, shown)
            return _parse(mm, p, size)
    except PermissionError as exc:
        raise ModelLoadError(f"cannot read {shown}: permission denied", "check the file's permissions") from exc
    except OSError as exc:
        raise ModelLoadError(f"cannot read {shown}: {exc.strerror or exc}") from exc


def _check_magic(mm: mmap.mmap, shown: str) -> None:
    head = bytes(mm[:32])
    if head[:4] == b"GGUF":
        return
    for magic, what, fix in _KNOWN_MAGIC:
        if head.lower().startswith(magic.lower()):
            raise ModelLoadError(f"{shown} is {what}, not a GGUF model", fix)
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack_from("<Q", head)[0] < len(mm):
        raise ModelLoadError(
            f"{shown} is a safetensors file, not a GGUF model",
            "load the folder that contains it with the torch backend",
        )
    raise ModelLoadError(f"{shown} is not a GGUF model file (bad magic bytes)", "choose a .gguf model file")


class _Corrupt(Exception):
    """Internal: the header does not parse; turned into ModelLoadError by _parse."""


class _Cursor:
    """Little-endian reads over the mmap with bounds checks (random bytes must not crash us)."""

    def __init__(self, mm: mmap.mmap) -> None:
        self.mm, self.pos, self.end = mm, 0, len(mm)

    def unpack(self, fmt: str) -> Any:
        n = struct.calcsize(fmt)
        if self.pos + n > self.end:
            raise _Corrupt("header runs past the end of the file")
        (v,) = struct.unpack_from(fmt, self.mm, self.pos)
        self.pos += n
        return v

    def string(self, keep: bool = True) -> str | None:
        n = self.unpack("<Q")
        if self.pos + n > self.end:
            raise _Corrupt("a string in the header runs past the end of the file")
        raw = self.mm[self.pos:self.pos + n] if keep else None
        self.pos += n
        return None if raw is None else raw.decode("utf-8", errors="replace")

    def value(self, vtype: int, keep: bool) -> Any:
        if vtype == _STRING:
            return self.string(keep)
        if vtype == _ARRAY:
            etype, count = self.unpack("<I"), self.unpack("<Q")
            if etype in _SCALAR and not keep:  # skip a numeric array in one step
                nbytes = struct.calcsize(_SCALAR[etype]) * count
                if self.pos + nbytes > self.end:
                    raise _Corrupt("an array in the header runs past the end of the file")
                self.pos += nbytes
                return None
            if count > self.end - self.pos:  # every element takes at least one byte
                raise _Corrupt("an array in the header claims more elements than the file holds")
            items = [self.value(etype, keep) for _ in range(count)]
            return items if keep else None
        try:
            return self.unpack(_SCALAR[vtype])
        except KeyError:
            raise _Corrupt(f"unknown metadata value type {vtype}") from None


def _parse(mm: mmap.mmap, p: Path, size: int) -> GGUFInfo:
    shown = p.name
    cur = _Cursor(mm)
    try:
        cur.pos = 4
        version = cur.unpack("<I")
        if version not in (2, 3):
            raise ModelLoadError(
                f"{shown} uses GGUF version {version}, which lmdesk cannot read (only 2 and 3)",
                "get a current GGUF conversion of the model",
            )
        n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
        if n_tensors > size or n_kv > size:
            raise _Corrupt("impossible tensor or metadata counts")
        meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key = cur.string() or ""
            vtype = cur.unpack("<I")
            keep = vtype != _ARRAY or key in _KEEP_ARRAYS or key.endswith(_KEEP_PREFIX)
            val = cur.value(vtype, keep)
            if keep:
                meta[key] = val
        tensors = []  # (n_elements, ggml type, offset)
        for _ in range(n_tensors):
            cur.string(keep=False)
            n_dims = cur.unpack("<I")
            if n_dims > 8:
                raise _Corrupt("a tensor has an impossible number of dimensions")
            n_el = 1
            for _ in range(n_dims):
                n_el *= cur.unpack("<Q")
            ttype, offset = cur.unpack("<I"), cur.unpack("<Q")
            tensors.append((n_el, ttype, offset))
    except _Corrupt as exc:
        raise ModelLoadError(
            f"{shown} is not a valid GGUF model (corrupt header: {exc})", "download or convert the model again"
        ) from None

    import gguf  # its tables of quantisation block sizes (and numpy): only once a file is read

    align = int(meta.get("general.alignment") or gguf.GGUF_DEFAULT_ALIGNMENT)
    data_offset = -(-cur.pos // align) * align
    needed, params, bytes_by_type = data_offset, 0, {}
    for n_el, ttype, offset in tensors:
        params += n_el
        try:
            block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(ttype)]
        except (KeyError, ValueError):
            continue  # a tensor type newer than our gguf package: cannot size it, llama.cpp will judge
        nbytes = n_el // block * type_size
        bytes_by_type[ttype] = bytes_by_type.get(ttype, 0) + nbytes
        needed = max(needed, data_offset + offset + nbytes)
    if needed > size:
        raise ModelLoadError(
            f"{shown} is truncated: {size:,} of {needed:,} bytes present (an interrupted download?)",
            "download or copy the model file again",
        )
    info = _info_from_meta(p, meta, params, bytes_by_type, size)
    info.data_offset = data_offset
    return info


def _info_from_meta(p: Path, meta: dict[str, Any], params: int, bytes_by_type: dict, size: int) -> GGUFInfo:
    arch = str(meta.get("general.architecture") or "unknown")

    def arch_key(suffix: str) -> Any:
        return meta.get(f"{arch}.{suffix}")

    tokens = meta.get("tokenizer.ggml.tokens") or []

    def token_text(key: str) -> str | None:
        tid = meta.get(key)
        return tokens[tid] if isinstance(tid, int) and 0 <= tid < len(tokens) else None

    n_layer = int(arch_key("block_count") or 0)
    n_head = arch_key("attention.head_count") or 0
    n_head_kv = arch_key("attention.head_count_kv")
    n_head_kv = n_head if n_head_kv is None else n_head_kv
    n_embd = int(arch_key("embedding_length") or 0)
    # head_count(_kv) is a per-layer list in some models (e.g. OpenELM); sum over layers then.
    heads0 = n_head[0] if isinstance(n_head, list) and n_head else n_head
    k_len = arch_key("attention.key_length") or (n_embd // heads0 if heads0 else 0)
    v_len = arch_key("attention.value_length") or k_len
    kv_heads_total = sum(n_head_kv) if isinstance(n_head_kv, list) else int(n_head_kv or 0) * n_layer
    kv_per_token = kv_heads_total * (int(k_len) + int(v_len)) * 2  # f16

    info = GGUFInfo(
        path=str(p),
        name=str(meta.get("general.name") or p.stem),
        architecture=arch,
        parameter_count=params,
        quantization=_quant_name(meta.get("general.file_type"), bytes_by_type),
        context_length=int(arch_key("context_length")) if arch_key("context_length") else None,
        chat_template=meta.get("tokenizer.chat_template"),
        bos_token=token_text("tokenizer.ggml.bos_token_id"),
        eos_token=token_text("tokenizer.ggml.eos_token_id"),
        # llama.cpp's default when the key is absent is to add BOS for SPM vocabularies only.
        add_bos_token=bool(meta.get("tokenizer.ggml.add_bos_token", meta.get("tokenizer.ggml.model") == "llama")),
        file_size=size,
        size_label=meta.get("general.size_label"),
        block_count=n_layer,
        kv_bytes_per_token=kv_per_token,
        metadata={k: v for k, v in meta.items() if k != "tokenizer.ggml.tokens"},
    )
    info.est_ram_bytes = estimate_ram(info, DEFAULT_N_CTX)
    return info


def _quant_name(file_type: Any, bytes_by_type: dict[int, int]) -> str:
    """'Q4_1' from general.file_type; else the tensor type holding the most bytes."""
    import gguf

    if isinstance(file_type, int):
        try:
            name = gguf.LlamaFileType(file_type).name
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    if bytes_by_type:
        ttype = max(bytes_by_type, key=bytes_by_type.__getitem__)
        try:
            return gguf.GGMLQuantizationType(ttype).name
        except ValueError:
            pass
    return "unknown"


def is_known_architecture(arch: str) -> bool:
    """True if the gguf package (which tracks llama.cpp) knows `arch` as a model architecture."""
    import gguf

    return arch in set(gguf.MODEL_ARCH_NAMES.values())
