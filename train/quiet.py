"""Import Keras / TensorFlow without their C++ start-up banner on stderr.

TensorFlow's shared libraries log through absl before anyone can configure it
("WARNING: All log messages before absl::InitializeLog() ...", "oneDNN custom
operations are on ..."), straight to file descriptor 2: ``TF_CPP_MIN_LOG_LEVEL``
does not reach them. A CLI whose error should be one line would print three
lines of banner before it. So the first import runs with descriptor 2 pointed
at a temporary file; the known banner lines are dropped and anything else
(a real warning, or the reason an import failed) is written back to stderr.
``TINYAUDIO_NATIVE_STDERR=1`` turns this off, as it does the runtime's silencing
of native stderr (both redirect descriptor 2 with ``runtime.errors.stderr_descriptor_to``).

Importing this module imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import tempfile

from runtime.errors import native_stderr_shown, stderr_descriptor_to

# Start-up lines that say nothing about the user's run (substrings).
BANNER = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
    "Unable to register cu",
    "TF-TRT Warning",
    "computation placer already registered",
)


@contextlib.contextmanager
def filtered_stderr(noise: tuple[str, ...]):
    """While the block runs, file descriptor 2 (C libraries, and Python's own stderr) goes to a
    temporary file; afterwards its lines are written back to stderr except those containing one
    of the ``noise`` substrings. If the block raises, everything is written back, so nothing that
    explains a failure is hidden. ``TINYAUDIO_NATIVE_STDERR=1``: no filtering."""
    if native_stderr_shown():
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        failed = True
        try:
            with stderr_descriptor_to(tmp.fileno()):
                yield
            failed = False
        finally:
            tmp.seek(0)
            text = tmp.read().decode("utf-8", errors="replace")
            kept = text if failed else "".join(
                line for line in text.splitlines(keepends=True) if not any(n in line for n in noise))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def quiet_import(name: str):
    """``importlib.import_module(name)``, with TensorFlow's start-up banner kept off stderr.

    A module already imported is returned as is (the banner only comes once).
    If the import fails, everything it printed is replayed before the exception
    propagates, so nothing that explains a failure is hidden.
    """
    if name in sys.modules:
        return sys.modules[name]
    with filtered_stderr(BANNER):
        return importlib.import_module(name)


def import_keras():
    """Keras, imported through :func:`quiet_import` (its backend, TensorFlow by default, with it)."""
    return quiet_import("keras")
