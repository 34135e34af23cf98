"""Model runtimes. `load_backend` picks one by name and imports it only when it is used
(torch and transformers cost seconds of imports, so the GUI must not pay for them at start-up)."""

from __future__ import annotations

import importlib
import threading

from lmdesk.backends.base import Backend, ProgressCallback
from lmdesk.core.errors import BackendUnavailableError
from lmdesk.core.params import LoadOptions

# name -> "module:function" of a loader with the BackendLoader signature.
_LOADERS = {
    "llama": "lmdesk.backends.llamacpp:load",
    "torch": "lmdesk.backends.hf:load",
    "remote": "lmdesk.backends.remote:load",
    "fake": "lmdesk.backends.fake:load",
}
BACKEND_NAMES = ("llama", "torch", "remote")


def load_backend(
    name: str,
    path: str,
    options: LoadOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Backend:
    """Load `path` with the backend called `name`; raises ModelLoadError / BackendUnavailableError."""
    target = _LOADERS.get(name)
    if target is None:
        raise BackendUnavailableError(
            f"unknown backend '{name}'", f"choose one of: {', '.join(BACKEND_NAMES)}"
        )
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise BackendUnavailableError(
                f"the '{name}' backend is not available in this version of lmdesk"
            ) from exc
        raise BackendUnavailableError(
            f"the '{name}' backend needs the Python package '{exc.name}', which is not installed",
            f"install it with: pip install {exc.name}",
        ) from exc
    return getattr(module, func_name)(
        path, options or LoadOptions(), progress or (lambda _f: None), cancel or threading.Event()
    )
