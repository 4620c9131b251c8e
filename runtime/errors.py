"""Project exceptions of the runtime.

Every message is one line and says what to do, so the CLI can print it as
``error: <message>`` without a traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys

from runtime.metadata import MetadataError


class RuntimeFailure(Exception):
    """Base class of runtime errors (named so it does not shadow ``RuntimeError``)."""


class ModelLoadError(RuntimeFailure):
    """The model file is missing, not a model, or has an unusable signature."""


class InferenceError(RuntimeFailure):
    """The backend failed while running the model on a window."""


class AudioSourceError(RuntimeFailure):
    """An input (microphone, file, stdin) cannot be opened or stopped delivering audio."""


class ConfigError(RuntimeFailure, ValueError):
    """A setting is out of range (hop, smoothing, threshold, rate, ...)."""


class InputTypeError(RuntimeFailure, TypeError):
    """Wrongly typed or shaped data was pushed into a buffer."""


# Everything the CLI turns into a one-line ``error:`` message.
USER_ERRORS: tuple[type[BaseException], ...] = (RuntimeFailure, MetadataError)

__all__ = [
    "AudioSourceError",
    "InferenceError",
    "InputTypeError",
    "ConfigError",
    "MetadataError",
    "ModelLoadError",
    "RuntimeFailure",
    "USER_ERRORS",
]


def one_line(e: BaseException, limit: int = 200) -> str:
    """First line of an exception's text (library errors are often multi-line)."""
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:limit]


def native_stderr_shown() -> bool:
    """``TINYAUDIO_NATIVE_STDERR=1``: leave file descriptor 2 alone, for debugging."""
    return os.environ.get("TINYAUDIO_NATIVE_STDERR") == "1"


@contextlib.contextmanager
def stderr_descriptor_to(fileno: int):
    """File descriptor 2, where C libraries write, points at ``fileno`` while the block
    runs (Python's ``sys.stderr`` is flushed on both sides). Where there is no real
    descriptor 2 (embedded, some captures) it is left alone."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):
        yield
        return
    os.dup2(fileno, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence what C libraries print straight to file descriptor 2 (LiteRT's
    "Created XNNPACK delegate", ALSA's probing noise) while the block runs, so
    stderr carries only our one-line errors. ``TINYAUDIO_NATIVE_STDERR=1`` keeps it."""
    if native_stderr_shown():
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with stderr_descriptor_to(devnull):
            yield
    finally:
        os.close(devnull)


@contextlib.contextmanager
def native_stderr_silenced():
    """For a whole CLI run: file descriptor 2 goes to /dev/null (so C libraries,
    e.g. PortAudio's audio thread reporting a vanished device, cannot print
    there at any moment), while Python's ``sys.stderr`` (our ``error:`` line,
    warnings, tracebacks of real bugs) keeps writing to the real stderr.
    ``TINYAUDIO_NATIVE_STDERR=1`` turns this off for debugging."""
    if native_stderr_shown():
        yield
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    # Python's stderr keeps a private copy of the real fd; quiet_native_stderr does the rest.
    old_stderr = sys.stderr
    sys.stderr = os.fdopen(real, "w", buffering=1, encoding=getattr(old_stderr, "encoding", None) or "utf-8")
    try:
        with quiet_native_stderr():
            yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = old_stderr
