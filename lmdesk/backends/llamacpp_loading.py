"""How the `llama` backend hooks into llama-cpp-python while a model loads.

llama-cpp-python offers no argument for some things lmdesk needs at load time, so for the duration
of one load these helpers: route llama.cpp's log into Python logging (it alone says *why* a load
failed), report llama.cpp's own load progress and let Cancel stop it, keep llama-cpp-python from
compiling the file's chat templates (lmdesk renders them itself, in a budgeted sandbox), and check
a LoRA adapter before llama.cpp sees it. Each patch is held under a lock and never outlives the
load.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from lmdesk.backends.base import ProgressCallback
from lmdesk.core.errors import GenerationError, ModelLoadError
from lmdesk.core.modelfiles.gguf_info import GGUFInfo, is_known_architecture, read_gguf_info

log = logging.getLogger("lmdesk.backends.llama")

# ------------------------------------------------------------------ llama.cpp's log, captured
# llama.cpp reports *why* a load failed only in its log ("unknown model architecture: 'x'").
# Route that log into Python logging (never stderr) and keep the recent error lines.
_GGML_ERROR = 4  # ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continuation
recent_errors: collections.deque[str] = collections.deque(maxlen=20)
_llama_log = logging.getLogger("lmdesk.backends.llama.cpp")
_log_callback = None


def install_log_callback() -> None:
    global _log_callback
    import llama_cpp
    import llama_cpp.llama  # noqa: F401  (its import installs llama-cpp-python's own callback; replace it after)

    if _log_callback is not None:
        return

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        try:
            line = text.decode("utf-8", errors="replace").rstrip()
            if level == _GGML_ERROR:
                recent_errors.append(line)
                _llama_log.warning("%s", line)
            elif line:
                _llama_log.debug("%s", line)
        except Exception:  # an exception must never cross back into C
            pass

    _log_callback = callback  # keep a reference: ctypes would free the trampoline otherwise
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def load_failure(path: Path, info: GGUFInfo, exc: Exception) -> ModelLoadError:
    """Turn a llama.cpp load failure into one clear line, using its captured log."""
    errors = " ".join(recent_errors)
    name = path.name
    if "unknown model architecture" in errors or not is_known_architecture(info.architecture):
        return ModelLoadError(
            f"{name}: architecture '{info.architecture}' is not supported by llama.cpp",
            "use a model with a supported architecture, or update llama-cpp-python",
        )
    if "lora" in str(exc).lower():
        return ModelLoadError(f"cannot apply the LoRA adapter to {name}: {exc}", "check that the adapter fits this model")
    if "llama_context" in str(exc):
        return ModelLoadError(
            f"{name}: llama.cpp could not create the context (out of memory?)", "lower the context size"
        )
    cause = next((e.split("error loading model:", 1)[1].strip() for e in recent_errors
                  if "error loading model:" in e), None) or str(exc)
    return ModelLoadError(f"llama.cpp could not load {name}: {cause}", "download or convert the model again")


_params_lock = threading.Lock()


@contextlib.contextmanager
def load_progress(progress: ProgressCallback, cancel: threading.Event) -> Iterator[None]:
    """Report llama.cpp's own load progress (0.1–1.0) and let Cancel abort a load mid-way.

    llama-cpp-python builds the model parameters itself, from llama_model_default_params(), and
    has no argument for llama.cpp's progress callback; so, for the duration of one load, the
    defaults it gets carry our callback. Returning False from it makes llama.cpp stop loading.
    """
    import llama_cpp.llama_cpp as lib

    last = [0.0]

    @lib.llama_progress_callback
    def callback(fraction: float, _user_data: ctypes.c_void_p) -> bool:
        try:
            if fraction - last[0] >= 0.01:  # llama.cpp calls this per tensor: keep the GUI calm
                last[0] = fraction
                progress(0.1 + 0.9 * min(fraction, 1.0))
        except Exception:  # an exception must never cross back into C
            log.debug("progress callback failed", exc_info=True)
        return not cancel.is_set()

    original = lib.llama_model_default_params

    def defaults_with_progress():
        params = original()
        params.progress_callback = callback
        return params

    with _params_lock:  # one patched load at a time; the patch never outlives the load
        lib.llama_model_default_params = defaults_with_progress
        try:
            yield
        finally:
            lib.llama_model_default_params = original


class _UnusedChatFormatter:
    """Stands in for llama-cpp-python's Jinja2ChatFormatter while a model loads.

    llama-cpp-python compiles every chat template in a GGUF's metadata when it opens the file,
    with Jinja's constant folding on: a template such as `{{ 'x' * 1000000000 }}` would allocate
    gigabytes before lmdesk ever renders it in its own budgeted sandbox. lmdesk never uses those
    handlers (it renders and tokenises prompts itself), so nothing is compiled there."""

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        pass

    def to_chat_handler(self):
        def refuse(*_args: object, **_kwargs: object):
            raise GenerationError("llama-cpp-python's chat handler is not used by lmdesk")

        return refuse


_formatter_lock = threading.Lock()


@contextlib.contextmanager
def templates_left_uncompiled() -> Iterator[None]:
    """For the duration of one load, keep llama-cpp-python from compiling the file's templates."""
    import llama_cpp.llama_chat_format as chat_format

    with _formatter_lock:
        original = chat_format.Jinja2ChatFormatter
        chat_format.Jinja2ChatFormatter = _UnusedChatFormatter  # type: ignore[misc,assignment]
        try:
            yield
        finally:
            chat_format.Jinja2ChatFormatter = original  # type: ignore[misc]


def check_lora(path: Path) -> None:
    """A LoRA must be a readable GGUF adapter; say so plainly if it is not."""
    if not path.is_file():
        raise ModelLoadError(f"LoRA adapter not found: {path}", "check the adapter path")
    try:
        lora = read_gguf_info(path)
    except ModelLoadError as exc:
        raise ModelLoadError(f"LoRA adapter: {exc.message}", exc.fix) from None
    kind = lora.metadata.get("general.type")
    if kind and kind != "adapter":
        raise ModelLoadError(f"{path.name} is a full model, not a LoRA adapter", "choose an adapter GGUF")
