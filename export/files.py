"""File I/O helpers: atomic writes and hashes."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from export.config import ExportError
from runtime import files


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
    """``runtime.files.write_atomic``, with a write failure as ExportError:
    readers never see a half-written file."""
    try:
        return files.write_atomic(path, data)
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from None


def save_keras_atomic(model, path: Path) -> Path:
    """``model.save`` to a temporary ``.keras`` name, then ``os.replace``."""
    try:
        with files.atomic_path(path, suffix=".keras") as tmp:
            model.save(str(tmp))
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from None
    return Path(path)


if __name__ == "__main__":  # a library module: `python -m` would import it, do nothing and exit 0
    raise SystemExit("error: export.files is a library module, not a command (see python -m export --help)")
