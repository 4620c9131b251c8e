"""Held-out / calibration audio: folders of clips -> fixed-length windows.

Numeric part (``clip_windows``) is separate from I/O (``load_folder``).
A folder may have any layout; a clip's label comes from ``label_source``:
``"parent"`` (its parent folder's name), ``"prefix"`` (the file name up to the
first ``_``, e.g. FSDD ``3_jackson_0.wav`` -> ``"3"``) or ``"none"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.config import ExportError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")
LABEL_SOURCES = ("parent", "prefix", "none")


@dataclass(frozen=True)
class WindowSet:
    """Windows ready for a model.

    Attributes:
        x: float32 array (n, window_samples), raw mono PCM in [-1, 1].
        labels: n labels (str) or ``None`` per window.
        sources: n source names (clip file names), for reports.
    """

    x: np.ndarray
    labels: tuple[str | None, ...]
    sources: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.x.ndim != 2 or len(self.labels) != len(self.x) or len(self.sources) != len(self.x):
            raise ExportError(f"window set shapes disagree: x {self.x.shape}, {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.x)

    @classmethod
    def from_array(cls, x: np.ndarray, labels=None) -> "WindowSet":
        """From an array (n, window) float32 and optional labels."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ExportError(f"audio array must be (n, window_samples), got shape {x.shape}")
        labels = tuple(labels) if labels is not None else (None,) * len(x)
        return cls(x, tuple(None if v is None else str(v) for v in labels), tuple(f"#{i}" for i in range(len(x))))

    def subset(self, n: int, seed: int = 0) -> "WindowSet":
        """At most ``n`` windows, drawn without replacement (deterministic)."""
        if len(self) <= n:
            return self
        idx = np.sort(np.random.default_rng(seed).choice(len(self), n, replace=False))
        return WindowSet(self.x[idx], tuple(self.labels[i] for i in idx), tuple(self.sources[i] for i in idx))


def clip_windows(clip: np.ndarray, window: int, max_windows: int) -> np.ndarray:
    """Cut a mono clip (samples,) into non-overlapping windows (k, window),
    1 <= k <= max_windows; the last (or only) window is zero-padded."""
    clip = np.asarray(clip, dtype=np.float32).reshape(-1)
    k = max(1, min(max_windows, -(-len(clip) // window)))
    out = np.zeros((k, window), dtype=np.float32)
    for i in range(k):
        part = clip[i * window:(i + 1) * window]
        out[i, :len(part)] = part
    return out


def label_of(path: Path, label_source: str) -> str | None:
    if label_source == "parent":
        return path.parent.name
    if label_source == "prefix":
        return path.stem.split("_", 1)[0]
    return None


def read_clip(path: Path, sample_rate: int) -> np.ndarray:
    """One file as mono float32 at ``sample_rate``, decoded exactly as training decodes it
    (``train.data.read_audio``: soxr, and the same refusals of an empty, truncated or NaN-holding
    file or a rate no recording has; a NaN sample would give int8 calibration an infinite scale)."""
    from train.data import AudioError, read_audio

    try:
        return read_audio(Path(path), sample_rate)
    except AudioError as e:
        raise ExportError(str(e)) from None


def audio_files(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"audio folder not found: {folder}")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def load_folder(
    folder: Path,
    sample_rate: int,
    window: int,
    label_source: str = "parent",
    max_windows_per_clip: int = 4,
    max_clips: int | None = None,
    seed: int = 0,
) -> WindowSet:
    """Every audio file under ``folder`` (or ``max_clips`` of them, drawn with
    ``seed``) as windows. Raises :class:`ExportError` if there is none."""
    if label_source not in LABEL_SOURCES:
        raise ExportError(f"label source must be one of {LABEL_SOURCES}, got {label_source!r}")
    if sample_rate < 1:
        raise ExportError(f"sample rate must be a positive number of Hz, got {sample_rate}")
    if max_clips is not None and max_clips < 1:  # np.random.choice would fail on a negative count
        raise ExportError(f"max_clips must be >= 1, got {max_clips}")
    files = audio_files(folder)
    if max_clips is not None and len(files) > max_clips:
        idx = np.sort(np.random.default_rng(seed).choice(len(files), max_clips, replace=False))
        files = [files[i] for i in idx]
    if not files:
        raise ExportError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {folder}")
    xs, labels, sources = [], [], []
    for path in files:
        w = clip_windows(read_clip(path, sample_rate), window, max_windows_per_clip)
        xs.append(w)
        labels += [label_of(path, label_source)] * len(w)
        sources += [path.name] * len(w)
    return WindowSet(np.concatenate(xs), tuple(labels), tuple(sources))


if __name__ == "__main__":  # a library module: `python -m` would import it, do nothing and exit 0
    raise SystemExit("error: export.audio is a library module, not a command (see python -m export --help)")
