"""GGUF → safetensors conversion cache for the torch backend.

transformers can read a GGUF file, but it dequantises every tensor on every load (16–38 s for the
135M embedded model on this machine's 2 cores). We convert once into the cache folder and load the
safetensors copy afterwards. A conversion is keyed by the source's identity (resolved path, size,
mtime) and the transformers version (its GGUF mapping changes between releases); it is written to a
temporary folder and renamed into place, so a crash or a concurrent conversion never leaves a
half-written copy that a later load would trust.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from lmdesk.backends.base import ProgressCallback
from lmdesk.core.errors import ModelLoadError
from lmdesk.core.modelfiles.gguf_info import read_gguf_info

log = logging.getLogger("lmdesk.backends.hf")

CACHE_ENV = "LMDESK_HF_CACHE"  # overrides the cache folder (tests share one conversion per session)
MARKER = "lmdesk-source.json"  # written last: a folder without it is not a finished conversion


@dataclass(frozen=True)
class SourceIdentity:
    """What makes two GGUF files "the same" for the cache."""

    path: str
    size: int
    mtime_ns: int
    converter: str  # transformers version

    @classmethod
    def of(cls, gguf: Path) -> SourceIdentity:
        import transformers

        resolved = gguf.resolve()
        st = resolved.stat()
        return cls(str(resolved), st.st_size, st.st_mtime_ns, transformers.__version__)

    def key(self) -> str:
        raw = f"{self.path}\0{self.size}\0{self.mtime_ns}\0{self.converter}".encode()
        return hashlib.sha256(raw).hexdigest()[:16]


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Folder holding converted models: $LMDESK_HF_CACHE, else <cache_dir>/torch-gguf (the app's
    cache folder, which the engine passes in LoadOptions), else one in the system's temp folder."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    if cache_dir:
        return Path(cache_dir) / "torch-gguf"
    return Path(tempfile.gettempdir()) / "lmdesk-torch-gguf"


def cached_folder(gguf: Path, root: Path | None = None) -> Path:
    """Where the conversion of `gguf` lives (whether or not it exists yet)."""
    ident = SourceIdentity.of(gguf)
    return (root or cache_root()) / f"{Path(ident.path).stem}-{ident.key()}"


def is_converted(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def ensure_converted(
    gguf: Path, progress: ProgressCallback, cancel: threading.Event, root: Path | None = None
) -> Path:
    """Return the safetensors folder for `gguf`, converting it first if the cache has no copy."""
    gguf = Path(gguf)
    if not gguf.is_file():
        raise ModelLoadError(f"model file not found: {gguf}")
    root = root or cache_root()
    target = cached_folder(gguf, root)
    if is_converted(target):
        log.info("using converted copy %s", target)
        return target
    read_gguf_info(gguf)  # a clear ModelLoadError for a corrupt, truncated or non-GGUF file
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _convert(gguf, tmp, progress, cancel)
        if is_converted(target):  # another process finished first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _drop_stale(root, target)
    return target


def _conversion_dtype(gguf: Path) -> str:
    """float32 keeps the dequantised weights exact; fall back to bfloat16 when RAM is short."""
    from gguf import GGUFReader

    from lmdesk.backends.hf_device import available_bytes

    n = sum(int(t.n_elements) for t in GGUFReader(str(gguf)).tensors)
    free = available_bytes("cpu")
    # transformers holds the dequantised state dict and the model at once while converting: 2 copies.
    if free is None or 2 * n * 4 < free:
        return "float32"
    if 2 * n * 2 < free:
        log.warning("converting %s in bfloat16: not enough RAM for float32", gguf.name)
        return "bfloat16"
    raise ModelLoadError(
        f"not enough memory to convert {gguf.name} for the torch backend (needs about {4 * n / 2**30:.1f} GiB)",
        "use the llama backend for this GGUF file",
    )


def _convert(gguf: Path, out: Path, progress: ProgressCallback, cancel: threading.Event) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def check_cancel() -> None:
        if cancel.is_set():
            raise ModelLoadError("loading was cancelled")

    started = time.perf_counter()
    log.info("converting %s to safetensors in %s (once; later loads use the copy)", gguf, out.parent)
    progress(0.02)
    dtype = _conversion_dtype(gguf)
    check_cancel()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        progress(0.15)
        check_cancel()
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=getattr(torch, dtype)
        )
    except (ValueError, KeyError, OSError, NotImplementedError) as exc:
        raise ModelLoadError(
            f"transformers cannot read {gguf.name}: {_first_line(exc)}",
            "this GGUF architecture or quantisation may only work with the llama backend",
        ) from exc
    progress(0.85)
    check_cancel()
    _drop_gguf_quantizer(model)
    out.mkdir(parents=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    del model
    identity = SourceIdentity.of(gguf)
    marker = {**identity.__dict__, "dtype": dtype, "seconds": round(time.perf_counter() - started, 2)}
    (out / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
    progress(0.95)
    log.info("converted %s in %.1f s", gguf.name, time.perf_counter() - started)


def _drop_gguf_quantizer(model) -> None:
    """transformers marks a model read from GGUF as "quantized with gguf" and refuses to save it.

    Without the `kernels` package (our case) every tensor is fully dequantised into plain torch
    tensors, so the mark is stale: we check that claim, then remove the mark and save normally.
    """
    import torch

    for name, param in model.named_parameters():
        if type(param.data) is not torch.Tensor or not param.dtype.is_floating_point:
            raise ModelLoadError(f"GGUF tensor {name} stayed quantised; the torch backend cannot convert this file")
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _drop_stale(root: Path, keep: Path) -> None:
    """Remove older conversions of the same source path (the file was replaced or transformers upgraded)."""
    try:
        source = json.loads((keep / MARKER).read_text(encoding="utf-8"))["path"]
    except (OSError, ValueError, KeyError):
        return
    for other in root.iterdir():
        if other == keep or not (other / MARKER).is_file():
            continue
        try:
            if json.loads((other / MARKER).read_text(encoding="utf-8")).get("path") == source:
                log.info("removing stale conversion %s", other)
                shutil.rmtree(other, ignore_errors=True)
        except (OSError, ValueError):
            continue


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
