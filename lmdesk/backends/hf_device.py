"""Device and dtype choice for the torch backend, and the memory estimate made before loading.

The estimate reads only safetensors headers and config.json (no torch tensors are created), so a
model that cannot fit is refused in milliseconds with a clear message instead of swapping the
machine to death or dying in the middle of `from_pretrained`.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from lmdesk.core.errors import ModelLoadError
from lmdesk.core.params import LoadOptions

log = logging.getLogger("lmdesk.backends.hf")

DTYPE_ALIASES = {
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "float32": "float32", "fp32": "float32", "float": "float32",
}
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
# Bytes per element of the dtypes safetensors files store (for counting parameters).
_ST_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
             "F8_E4M3": 1, "F8_E5M2": 1}
# Activations, allocator slack and the CUDA context are not in the weights; 20 % + 300 MiB has been
# enough for the models we tried, and erring high only costs a refusal the user can override.
_OVERHEAD_FRACTION = 0.20
_OVERHEAD_BYTES = 300 * 2**20
GIB = 2**30


@dataclass(frozen=True)
class DeviceChoice:
    """Where and in which precision a model runs: torch device name and dtype name."""

    device: str  # "cuda", "mps", "cpu"
    dtype: str  # "bfloat16", "float16", "float32"

    def torch_dtype(self):
        """The torch.dtype object (imports torch: only call inside the backend)."""
        import torch

        return getattr(torch, self.dtype)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a model is expected to need on its device, and the bytes available there."""

    weights: int
    kv_cache: int
    overhead: int
    available: int | None  # None when the platform cannot tell us

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.overhead

    def fits(self) -> bool:
        """True when it fits, or when the free memory is unknown (then we just try)."""
        return self.available is None or self.total <= self.available

    def describe(self) -> str:
        free = "unknown" if self.available is None else f"{self.available / GIB:.1f} GiB"
        return f"needs about {self.total / GIB:.1f} GiB, {free} free"


def choose_device(options: LoadOptions) -> DeviceChoice:
    """Best available device (cuda → mps → cpu) and its best dtype, unless the options say otherwise."""
    import torch

    wanted = (options.device or "").strip().lower() or None
    if wanted is not None and wanted.split(":")[0] not in ("cuda", "mps", "cpu"):
        raise ModelLoadError(f"unknown device '{options.device}'", "choose cuda, mps or cpu")
    cuda_ok = torch.cuda.is_available()
    mps_ok = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if wanted is None:
        wanted = "cuda" if cuda_ok else "mps" if mps_ok else "cpu"
    base = wanted.split(":")[0]
    if base == "cuda" and not cuda_ok:
        raise ModelLoadError("no CUDA GPU is available to PyTorch", "choose the cpu device, or install a CUDA build of torch")
    if base == "mps" and not mps_ok:
        raise ModelLoadError("the Apple GPU (mps) is not available to PyTorch", "choose the cpu device")

    if options.dtype:
        dtype = DTYPE_ALIASES.get(options.dtype.strip().lower())
        if dtype is None:
            raise ModelLoadError(f"unknown dtype '{options.dtype}'", "choose bfloat16, float16 or float32")
    elif base == "cuda":
        dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    elif base == "mps":
        dtype = "float16"
    else:
        # Half precision on CPU is emulated in many kernels: slower, and fp32 is what tests compare against.
        dtype = "float32"
    if base == "cpu" and dtype != "float32":
        log.warning("%s on the CPU is often slower than float32", dtype)
    return DeviceChoice(wanted, dtype)


def safetensors_parameter_count(folder: Path) -> int:
    """Number of weight elements in the folder's safetensors files, read from their headers only."""
    total = 0
    for f in sorted(folder.glob("*.safetensors")):
        try:
            with f.open("rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                header = json.loads(fh.read(min(n, f.stat().st_size)))
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                begin, end = info["data_offsets"]
                total += (end - begin) // _ST_BYTES.get(info["dtype"], 2)
        except (struct.error, ValueError, KeyError, TypeError, AttributeError) as exc:
            # A Git LFS pointer, an HTML error page or a cut download named *.safetensors.
            raise ModelLoadError(
                f"{f.name} in {folder.name} is not a valid safetensors file (bad header: {type(exc).__name__})",
                "download the model again (for a git clone, run `git lfs pull`)",
            ) from exc
    return total


def kv_cache_bytes(config: dict, n_ctx: int, dtype_bytes: int) -> int:
    """Size of a full key/value cache of n_ctx tokens, from config.json fields (0 if unknown)."""
    cfg = config.get("text_config", config)
    layers = cfg.get("num_hidden_layers") or cfg.get("n_layer") or 0
    heads = cfg.get("num_attention_heads") or cfg.get("n_head") or 0
    kv_heads = cfg.get("num_key_value_heads") or heads
    hidden = cfg.get("hidden_size") or cfg.get("n_embd") or 0
    head_dim = cfg.get("head_dim") or (hidden // heads if heads else 0)
    return 2 * layers * kv_heads * head_dim * n_ctx * dtype_bytes


def available_bytes(device: str) -> int | None:
    """Free memory on `device` (cuda: free VRAM; cpu and mps: available system RAM); None if unknown."""
    base = device.split(":")[0]
    if base == "cuda":
        import torch

        index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
        free, _total = torch.cuda.mem_get_info(index)
        return int(free)
    try:
        import psutil  # comes with accelerate

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def estimate_memory(folder: Path, config: dict, choice: DeviceChoice, n_ctx: int) -> MemoryEstimate:
    """What loading `folder` on `choice` will need, before anything is loaded."""
    per = DTYPE_BYTES[choice.dtype]
    weights = safetensors_parameter_count(folder) * per
    if weights == 0:
        # Pickle checkpoints have no readable header: their file size is a fair upper bound.
        weights = sum(f.stat().st_size for f in folder.iterdir() if f.suffix in (".bin", ".pt", ".pth"))
    kv = kv_cache_bytes(config, n_ctx, per)
    overhead = int(weights * _OVERHEAD_FRACTION) + _OVERHEAD_BYTES
    return MemoryEstimate(weights, kv, overhead, available_bytes(choice.device))
