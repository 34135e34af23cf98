"""Where lmdesk keeps its files, the user's settings, and logging set-up.

Paths come from platformdirs; LMDESK_HOME puts every one of them under one folder (tests always
set it to a temporary folder, so they never touch a user's real data).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import platformdirs

from lmdesk.core.params import LoadOptions

APP_NAME = "lmdesk"
HOME_ENV = "LMDESK_HOME"

log = logging.getLogger("lmdesk.config")


@dataclass(frozen=True)
class Paths:
    """The app's folders; created on first use by `ensure()`."""

    data: Path
    config: Path
    cache: Path
    logs: Path

    @property
    def models(self) -> Path:
        """Models the user downloaded or copied into lmdesk."""
        return self.data / "models"

    @property
    def database(self) -> Path:
        """The SQLite store of conversations and drafts."""
        return self.data / "lmdesk.sqlite3"

    @property
    def settings_file(self) -> Path:
        return self.config / "settings.json"

    def ensure(self) -> Paths:
        """Create every folder (idempotent) and return self."""
        for p in (self.data, self.config, self.cache, self.logs, self.models):
            p.mkdir(parents=True, exist_ok=True)
        return self


def app_paths() -> Paths:
    """Platform folders, or all under $LMDESK_HOME when it is set."""
    home = os.environ.get(HOME_ENV)
    if home:
        root = Path(home).expanduser()
        return Paths(root / "data", root / "config", root / "cache", root / "logs")
    dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
    return Paths(
        Path(dirs.user_data_dir), Path(dirs.user_config_dir), Path(dirs.user_cache_dir), Path(dirs.user_log_dir)
    )


@dataclass
class Settings:
    """User settings persisted as JSON; unknown keys are ignored, missing ones take defaults."""

    default_model: str | None = None  # path of the model to load at start-up; None = embedded
    default_backend: str = "llama"
    n_ctx: int = 4096
    n_threads: int | None = None
    n_gpu_layers: int = 0
    extra_model_paths: list[str] = field(default_factory=list)  # files/folders the user added
    theme: str = "system"  # "system", "light", "dark"
    # Per-model overrides of LoadOptions fields, keyed by model path: e.g. {"device": "cpu",
    # "dtype": "float16", "lora_path": "...", "n_ctx": 8192, "allow_pickle": true}.
    model_options: dict[str, dict] = field(default_factory=dict)

    def load_options(self, path: str, n_ctx: int | None = None) -> LoadOptions:
        """LoadOptions for `path`: global settings, then that model's overrides, then `n_ctx`."""
        options = LoadOptions(n_ctx=self.n_ctx, n_threads=self.n_threads, n_gpu_layers=self.n_gpu_layers)
        known = {f.name for f in fields(LoadOptions)}
        for key, value in self.model_options.get(str(path), {}).items():
            if key in known:
                setattr(options, key, value)
        if n_ctx:
            options.n_ctx = n_ctx
        return options

    @classmethod
    def load(cls, paths: Paths) -> Settings:
        """Read settings; a missing or corrupt file gives defaults (and a log line), never a crash."""
        try:
            raw = json.loads(paths.settings_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            log.warning("settings file %s unreadable (%s); using defaults", paths.settings_file, exc)
            return cls()
        if not isinstance(raw, dict):
            log.warning("settings file %s is not a JSON object; using defaults", paths.settings_file)
            return cls()
        values = {}
        for f in fields(cls):
            if f.name not in raw:
                continue
            if _valid_setting(f.name, raw[f.name]):
                values[f.name] = raw[f.name]
            else:  # a hand-edited "n_ctx": "8k" must not crash every later use of the settings
                log.warning("settings: ignoring %s=%r (wrong type)", f.name, raw[f.name])
        return cls(**values)

    def save(self, paths: Paths) -> None:
        """Write atomically (temp file + rename) so a crash never leaves half a file."""
        paths.config.mkdir(parents=True, exist_ok=True)
        tmp = paths.settings_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(tmp, paths.settings_file)


# The JSON types each Settings field accepts (a hand-edited file may hold anything).
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "default_model": (str, type(None)), "default_backend": (str,), "n_ctx": (int,),
    "n_threads": (int, type(None)), "n_gpu_layers": (int,), "extra_model_paths": (list,), "theme": (str,),
    "model_options": (dict,),
}


def _valid_setting(name: str, value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, _FIELD_TYPES.get(name, (object,))):
        return False
    if isinstance(value, list):
        return all(isinstance(v, str) for v in value)
    if isinstance(value, dict):
        return all(isinstance(v, dict) for v in value.values())
    return True


def setup_logging(paths: Paths, debug: bool = False) -> None:
    """Log to a rotating file in the logs folder (1 MB × 3); also to stderr with --debug."""
    paths.logs.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger("lmdesk")
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for h in list(root.handlers):
        if getattr(h, "_lmdesk", False):
            root.removeHandler(h)
            h.close()
    handler = logging.handlers.RotatingFileHandler(
        paths.logs / "lmdesk.log", maxBytes=1_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._lmdesk = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    if debug:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stream._lmdesk = True  # type: ignore[attr-defined]
        root.addHandler(stream)
