"""Errors a user may see. Each message is written for a person, not a log."""

from __future__ import annotations


class PlaygroundError(Exception):
    """Base class: the UI shows str(error) as is."""


class UnknownModelError(PlaygroundError):
    def __init__(self, model_id: str, known: list[str]) -> None:
        super().__init__(f"Unknown model '{model_id}'. Choose one of: {', '.join(known)}.")


class ModelUnavailableError(PlaygroundError):
    """The weights cannot be reached (offline, no local copy, gated repo...)."""


class UnsupportedPrecisionError(PlaygroundError):
    """A precision the model or this hardware cannot run."""


class EmptyInputError(PlaygroundError):
    """Nothing to send to the model."""


class InputTooLongError(PlaygroundError):
    """A prompt or document that cannot fit in the model's window."""


class BadFileError(PlaygroundError):
    """An upload that is not what the tab expects (not text, not an image...)."""


class OutOfMemoryError(PlaygroundError):
    """Not enough memory to load a model or to finish a generation."""


class BusyError(PlaygroundError):
    """Too many requests waiting."""


class BadSettingError(PlaygroundError):
    """A sampling or limit setting outside what the app accepts."""


class GenerationError(PlaygroundError):
    """The model failed or stalled while generating."""
