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


def unwritable(out: Path, siblings: tuple[str, ...] = (".json", ".png")) -> str | None:
    """Why the file ``out`` cannot be written, or None. Its folder (or the nearest existing folder
    above) must take a real file: os.access says yes to root everywhere, /proc included.
    ``siblings``: the suffixes written beside ``out``, which ``out`` itself must not have. Called
    before the work, so minutes of scoring or training never end with nowhere to write, and no
    sibling (.json, .png) is left beside a target that then fails."""
    out = Path(out)
    if out.is_dir():
        return f"it is a folder; give a file name, e.g. {out / 'report.md'}"
    if out.exists() and not out.is_file():  # a device such as /dev/null: the atomic rename would replace it
        return "it is not a regular file"
    if out.suffix.lower() in siblings:  # the Markdown would be overwritten by its own sibling of that suffix
        return f"the {out.suffix} written beside it would overwrite it; give a .md name"
    for sibling in (out.with_suffix(suffix) for suffix in siblings):  # else the work ends half written
        if sibling.is_dir() or (sibling.exists() and not sibling.is_file()):
            kind = "a folder" if sibling.is_dir() else "not a regular file"
            return f"{sibling}, written beside it, is {kind}"
    # Probed where the file would go, or in the deepest folder that exists on the way there: nothing
    # is created before the work (the writer makes the missing folders), so a refusal leaves no trace.
    blocker = next((a for a in out.parents if a.exists()), Path("."))
    if not blocker.is_dir():  # mkdir would say "File exists" or "Not a directory", which mislead
        return f"{blocker} is not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=blocker, prefix=".write-check-"):
            pass
    except OSError as e:
        return f"cannot create files in {blocker}: {e.strerror or type(e).__name__}"
    return None


def cannot_write(*paths: Path) -> str | None:
    """``cannot write PATH: why`` for the first of ``paths`` that :func:`unwritable` refuses, or that
    is named twice (a ``.json`` --out whose JSON sibling has the same name), else None. For commands
    that run minutes or hours before writing several files: checked first, so none is lost."""
    seen: set[Path] = set()
    for path in map(Path, paths):
        why = "two of the outputs would get this name" if path in seen else unwritable(path, siblings=())
        if why:
            return f"cannot write {path}: {why}"
        seen.add(path)
    return None


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
