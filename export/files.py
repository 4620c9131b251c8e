"""File I/O helpers: atomic writes and hashes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from export.config import ExportError


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def ensure_writable(folder: Path) -> Path:
    """Create ``folder`` and prove it can be written, or raise ExportError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-", delete=True):
            pass
    except OSError as e:
        raise ExportError(f"cannot write to output folder {folder}: {e.strerror or e}") from None
    return folder


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write to a temporary name in the same folder, then ``os.replace``:
    readers never see a half-written file."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; artifacts are meant to be shipped and shared
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def save_keras_atomic(model, path: Path) -> Path:
    """``model.save`` to a temporary ``.keras`` name, then ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".keras")
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path
