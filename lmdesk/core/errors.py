"""Typed errors a user can cause, each with a one-line human message and, where known, the fix."""

from __future__ import annotations


class LmdeskError(Exception):
    """Base of every error shown to users: `message` is one line, `fix` an optional hint."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def user_text(self) -> str:
        """One line for a banner or `error: …` on stderr."""
        return f"{self.message} — {self.fix}" if self.fix else self.message


class ModelLoadError(LmdeskError):
    """The model file or folder could not be loaded (missing, corrupt, unsupported, out of memory)."""


class ContextOverflowError(LmdeskError):
    """The input does not fit the model's context window even after the context policy."""


class GenerationError(LmdeskError):
    """The backend failed while generating."""


class BackendUnavailableError(LmdeskError):
    """The requested backend is not installed or not implemented yet."""


class NoModelLoadedError(LmdeskError):
    """A generation was requested before any model was loaded."""
