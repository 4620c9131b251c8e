"""Atomic file writes and input-path checks, shared by every stage (standard library only).

A crash, SIGKILL or full disk in the middle of a write must never leave a truncated file
under the final name that a later resume, export or app would take for complete. Every
artifact is therefore written to a hidden temporary name in the same folder, flushed to
disk, and renamed over the target with ``os.replace`` (atomic on POSIX and Windows); on
POSIX the folder is then fsynced too, so the rename itself survives a power cut.
Temporary names start with ``.`` and contain ``.partial`` so leftovers of a killed
process are recognisable (``remove_partials``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

PARTIAL = ".partial"


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Persist a rename in ``folder``. Windows cannot open a folder for fsync (and its
    rename is already durable when it returns), so there it is skipped."""
    if os.name == "posix":
        _fsync(str(folder))


@contextlib.contextmanager
def atomic_path(path: Path | str, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; after the block, fsync it and rename it to ``path``.

    ``suffix`` is appended to the temporary name for writers that insist on an extension
    (Keras wants ``.keras``, matplotlib infers the format from it). On any exception the
    temporary file is removed and the target is left untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=PARTIAL + suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        _fsync(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; artifacts are meant to be shared
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_atomic(path: Path | str, data: bytes | str) -> Path:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically. Raises OSError."""
    raw = data.encode() if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        tmp.write_bytes(raw)
    return Path(path)


def remove_partials(folder: Path | str) -> int:
    """Delete temporary files a killed writer left in ``folder``; returns how many."""
    n = 0
    for leftover in Path(folder).glob(f".*{PARTIAL}*"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
            n += 1
    return n


def not_a_file(path: Path, what: str) -> str | None:
    """Why ``path`` cannot be opened as a ``what`` (e.g. "audio file"), or ``None`` when it is a
    regular file. Tells a missing path from a folder or a device, which "not found" would hide."""
    if path.is_file():
        return None
    if path.is_dir():
        return f"{what} {path} is a folder, not a file"
    if path.exists():
        return f"{what} {path} is not a regular file"
    return f"{what} not found: {path}"
