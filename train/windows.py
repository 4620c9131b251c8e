"""Cutting clips into model windows, and clip-level predictions from window predictions.

A clip shorter than the window is zero-padded on both sides (centred); a longer clip
gives windows every ``hop`` samples, plus one aligned to its end so no tail is lost.
Training uses every window of every clip; evaluation averages a clip's window
probabilities (the clip-level prediction). Pure numpy.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def window_starts(length: int, window: int, hop: int) -> np.ndarray:
    """Start offsets (int64, may be negative for centred padding) of a clip's windows."""
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be positive, got {window}, {hop}")
    if length <= window:
        return np.array([-((window - length) // 2)], dtype=np.int64)
    starts = list(range(0, length - window + 1, hop))
    if starts[-1] != length - window:
        starts.append(length - window)
    return np.asarray(starts, dtype=np.int64)


def cut(audio: np.ndarray, start: int, window: int) -> np.ndarray:
    """``audio[start:start + window]`` with zeros wherever that range leaves the clip.

    audio: float32 (samples,). Returns float32 (window,).
    """
    out = np.zeros(window, dtype=np.float32)
    lo, hi = max(start, 0), min(start + window, len(audio))
    if hi > lo:
        out[lo - start:hi - start] = audio[lo:hi]
    return out


def clip_windows(audio: np.ndarray, window: int, hop: int) -> np.ndarray:
    """All windows of one clip: float32 (n_windows, window)."""
    return np.stack([cut(audio, int(s), window) for s in window_starts(len(audio), window, hop)])


def window_table(audios: Sequence[np.ndarray], window: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """(clip index, start) of every window of every clip: two int64 arrays of equal length.

    Training draws batches from this table instead of materialising all windows.
    """
    clip_idx, starts = [], []
    for i, a in enumerate(audios):
        s = window_starts(len(a), window, hop)
        clip_idx.append(np.full(len(s), i, dtype=np.int64))
        starts.append(s)
    return np.concatenate(clip_idx), np.concatenate(starts)


def clip_mean(window_probs: np.ndarray, clip_idx: np.ndarray, n_clips: int) -> np.ndarray:
    """Mean of window probabilities per clip: (n_windows, C) -> (n_clips, C) float32."""
    sums = np.zeros((n_clips, window_probs.shape[1]), dtype=np.float64)
    np.add.at(sums, clip_idx, window_probs)
    counts = np.bincount(clip_idx, minlength=n_clips)[:, None]
    if (counts == 0).any():
        raise ValueError("a clip has no windows")
    return (sums / counts).astype(np.float32)
