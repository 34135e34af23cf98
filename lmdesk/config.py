"""Where lmdesk keeps its files, the user's settings, and logging set-up.

Paths come from platformdirs; LMDESK_HOME puts every one of them under one folder (tests always
set it to a temporary folder, so they never touch a user's real data).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import stat
import time
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
        """Create every folder (idempotent) and return self. Folders lmdesk creates are private to
        the user (0700); its own folders left open to others by an older version are tightened."""
        for p in (self.data, self.config, self.cache, self.logs, self.models):
            private_dir(p)
        return self


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create `path` and any missing parent as 0700 folders; an existing `path` that is a real
    folder of this user loses its group/other permissions (a symlink or a parent is left as is)."""
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for p in reversed(missing):
        try:
            p.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # created meanwhile by another process
            continue
        os.chmod(p, PRIVATE_DIR_MODE)  # mkdir's mode is masked by the umask
    if not missing:
        _tighten(path)
    if not path.is_dir():
        raise NotADirectoryError(20, "Not a folder", str(path))


def _tighten(path: Path) -> None:
    """Drop group/other permissions of a file or folder this user owns (never through a symlink)."""
    try:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode) or st.st_mode & 0o077 == 0:
            return
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            return
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)
    except OSError as exc:
        log.warning("could not make %s private: %s", path, exc)


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

    # Not saved: what went wrong reading the file, in words for the user (None when all was well),
    # and whether the unreadable file is still in place, so that saving must not overwrite it.
    load_problem = None
    keep_file = False

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
    def load(cls, paths: Paths, set_aside: bool = True) -> Settings:
        """Read settings; a missing or corrupt file gives defaults, never a crash.

        A file that cannot be parsed is renamed to settings.json.broken-<time> (with `set_aside`;
        the user's edits stay there to be fixed by hand) and `load_problem` says so. A file that
        cannot be read or moved stays where it is and `save()` will not overwrite it."""
        file = paths.settings_file
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except ValueError as exc:  # not JSON (a trailing comma), or not UTF-8
            return cls._broken(paths, f"it is not valid JSON ({exc})", set_aside)
        except OSError as exc:
            return cls._broken(paths, f"it cannot be read ({exc.strerror or exc})", False)
        if not isinstance(raw, dict):
            return cls._broken(paths, "it does not hold a JSON object", set_aside)
        values = {}
        for f in fields(cls):
            if f.name not in raw:
                continue
            if _valid_setting(f.name, raw[f.name]):
                values[f.name] = raw[f.name]
            else:  # a hand-edited "n_ctx": "8k" must not crash every later use of the settings
                log.warning("settings: ignoring %s=%r (wrong type)", f.name, raw[f.name])
        return cls(**values)

    @classmethod
    def _broken(cls, paths: Paths, why: str, set_aside: bool) -> Settings:
        settings = cls()
        file = paths.settings_file
        intro = f"Your settings file {file} could not be used: {why}."
        settings.keep_file = True
        settings.load_problem = f"{intro} lmdesk is using default settings; the file is left as it is."
        if set_aside:
            try:
                moved = _set_aside(file)
            except OSError as exc:
                settings.load_problem = (f"{intro} It could not be moved aside ({exc.strerror or exc}), so "
                                         "lmdesk is using default settings and will not save over it.")
            else:
                settings.keep_file = False
                settings.load_problem = (f"{intro} It was kept as {moved} and lmdesk started with "
                                         "default settings (models, model options, theme, context size).")
        log.warning("%s", settings.load_problem)
        return settings

    def save(self, paths: Paths) -> None:
        """Write atomically (temp file + rename, readable by the user only) so a crash never leaves
        half a file. Raises OSError, without writing, if the file on disk could not be read."""
        if self.keep_file:
            raise PermissionError(1, "not overwriting a settings file lmdesk could not read",
                                  str(paths.settings_file))
        private_dir(paths.config)
        tmp = paths.settings_file.with_suffix(".tmp")
        with private_open(tmp, "w") as f:
            f.write(json.dumps(asdict(self), indent=2))
        os.replace(tmp, paths.settings_file)


def _set_aside(file: Path) -> Path:
    """Rename `file` to <name>.broken-<time> (never over an earlier one) and return the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        target = file.with_name(f"{file.name}.broken-{stamp}" + (f"-{n}" if n > 1 else ""))
        if not os.path.lexists(target):
            os.rename(file, target)
            return target
    raise FileExistsError(17, "too many broken settings files", str(file))


def private_open(path: Path, mode: str = "w", encoding: str | None = "utf-8", errors: str | None = None):
    """open() for a text file that only the user may read: created 0600, tightened if it existed."""
    stream = open(path, mode, encoding=encoding, errors=errors,
                  opener=lambda p, flags: os.open(p, flags, PRIVATE_FILE_MODE))
    _tighten(Path(path))
    return stream


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
    private_dir(paths.logs)
    root = logging.getLogger("lmdesk")
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for h in list(root.handlers):
        if getattr(h, "_lmdesk", False):
            root.removeHandler(h)
            h.close()
    handler = _PrivateRotatingFileHandler(
        paths.logs / "lmdesk.log", maxBytes=1_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._lmdesk = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    for n in range(1, handler.backupCount + 1):  # rotated logs an older lmdesk left readable
        rotated = paths.logs / f"lmdesk.log.{n}"
        if rotated.exists():
            _tighten(rotated)
    if debug:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stream._lmdesk = True  # type: ignore[attr-defined]
        root.addHandler(stream)


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files only the user may read (a log may quote the user's prompts)."""

    def _open(self):  # also called after each rollover, for the new file
        return private_open(Path(self.baseFilename), self.mode, encoding=self.encoding, errors=self.errors)
