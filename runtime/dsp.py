"""Numeric building blocks of the streaming engine: no I/O, no clocks.

Shapes and dtypes are part of each contract: audio is ``float32`` in
[-1, 1]; a block is ``(frames,)`` (mono) or ``(frames, channels)``.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import soxr

from runtime.errors import ConfigError, InputTypeError
from runtime.limits import MAX_SAMPLE_ABS

SOXR_QUALITY = "HQ"  # the same quality offline and streaming, so the two agree bit for bit


def to_mono(block: np.ndarray) -> np.ndarray:
    """Downmix one block to mono.

    Args:
        block: ``float32``, ``(frames,)`` or ``(frames, channels)``.
    Returns:
        ``float32`` ``(frames,)``, the mean over channels (a view when already mono).
    Raises:
        InputTypeError: on another dtype or rank.
    """
    if not isinstance(block, np.ndarray) or block.dtype != np.float32:
        raise InputTypeError(f"audio blocks must be float32 numpy arrays, got {_describe(block)}")
    if block.ndim == 1:
        return block
    if block.ndim == 2 and block.shape[1] >= 1:
        if block.shape[1] == 1:
            return block[:, 0]
        # Mean, not sum: keeps a full-scale stereo signal inside [-1, 1].
        return block.mean(axis=1, dtype=np.float32)
    raise InputTypeError(f"audio blocks must be (frames,) or (frames, channels), got shape {block.shape}")


def pcm_to_float32(raw: np.ndarray) -> np.ndarray:
    """Integer PCM (int16/int32) or float PCM to ``float32`` in [-1, 1]; shape kept."""
    if raw.dtype == np.float32:
        return raw
    if raw.dtype == np.int16:
        return raw.astype(np.float32) / 32768.0
    if raw.dtype == np.int32:
        return (raw.astype(np.float64) / 2147483648.0).astype(np.float32)
    if raw.dtype == np.float64:
        return raw.astype(np.float32)
    raise InputTypeError(f"unsupported PCM sample type {raw.dtype}")


class StreamResampler:
    """Mono streaming resampler (``soxr.ResampleStream``); identity when the rates agree.

    ``process`` takes ``float32 (n,)`` at ``in_rate`` and returns ``float32 (m,)``
    at ``out_rate``. Fed a whole signal in any block sizes, the concatenated
    output equals ``soxr.resample(signal, in_rate, out_rate, quality="HQ")``.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ConfigError(f"sample rates must be positive, got {in_rate} -> {out_rate} Hz")
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        self._stream = None
        self.reset()

    @property
    def passthrough(self) -> bool:
        return self.in_rate == self.out_rate

    def reset(self) -> None:
        """Forget the filter state (start of a new, unrelated stream)."""
        if not self.passthrough:
            self._stream = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=SOXR_QUALITY)

    def process(self, mono: np.ndarray, last: bool = False) -> np.ndarray:
        if self.passthrough:
            return mono
        # soxr needs contiguous input; downmixed or sliced blocks may not be.
        return self._stream.resample_chunk(np.ascontiguousarray(mono), last=last)


class RingBuffer:
    """Preallocated mono ``float32`` ring buffer of the last ``capacity`` samples.

    Counts every sample ever written (``total``), so callers can ask for the
    window that ends at any recent absolute sample index. Never allocates after
    construction except for the window copy it returns.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ConfigError(f"ring buffer capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, dtype=np.float32)
        self.total = 0  # samples written since construction or reset

    def reset(self) -> None:
        """Empty the buffer (a new stream starts at absolute index 0)."""
        self._data.fill(0.0)
        self.total = 0

    def write(self, samples: np.ndarray) -> None:
        """Append ``float32 (n,)``. Rejects anything else rather than converting
        silently: an int16 block here would be 32768x too loud."""
        if not isinstance(samples, np.ndarray) or samples.dtype != np.float32 or samples.ndim != 1:
            raise InputTypeError(f"ring buffer takes float32 (n,) arrays, got {_describe(samples)}")
        n = samples.shape[0]
        if n == 0:
            return
        if n >= self.capacity:  # only the newest capacity samples can matter
            samples = samples[n - self.capacity :]
            start = (self.total + n - self.capacity) % self.capacity
        else:
            start = self.total % self.capacity
        m = samples.shape[0]
        first = min(m, self.capacity - start)
        self._data[start : start + first] = samples[:first]
        self._data[: m - first] = samples[first:]
        self.total += n

    def window(self, end: int, length: int, out: np.ndarray | None = None) -> np.ndarray:
        """Samples ``[end - length, end)`` (absolute indices), ``float32 (length,)``.

        Raises ``ConfigError`` if that range is not (or no longer) in the buffer.
        """
        start = end - length
        if length > self.capacity or start < 0 or end > self.total or start < self.total - self.capacity:
            raise ConfigError(
                f"window [{start}, {end}) is not in the ring buffer (holds [{max(0, self.total - self.capacity)}, {self.total}))"
            )
        if out is None:
            out = np.empty(length, dtype=np.float32)
        s = start % self.capacity
        first = min(length, self.capacity - s)
        out[:first] = self._data[s : s + first]
        out[first:] = self._data[: length - first]
        return out


class Smoother:
    """Mean of the last ``k`` probability vectors (``float32 (classes,)``)."""

    def __init__(self, k: int, num_classes: int) -> None:
        if k < 1:
            raise ConfigError(f"smoothing must cover at least 1 window, got {k}")
        self.k = int(k)
        self.num_classes = int(num_classes)
        self._history: deque[np.ndarray] = deque(maxlen=self.k)

    def reset(self) -> None:
        self._history.clear()

    def update(self, probs: np.ndarray) -> np.ndarray:
        if probs.shape != (self.num_classes,):
            raise InputTypeError(f"expected probabilities of shape ({self.num_classes},), got {probs.shape}")
        self._history.append(np.asarray(probs, dtype=np.float32))
        return np.mean(self._history, axis=0, dtype=np.float32)


def top_k(probs: np.ndarray, k: int) -> list[tuple[int, float]]:
    """Indices and scores of the ``k`` largest entries, best first (ties: lower index first)."""
    k = max(1, min(int(k), probs.shape[0]))
    order = np.argsort(-probs, kind="stable")[:k]
    return [(int(i), float(probs[i])) for i in order]


def bad_samples(x: np.ndarray) -> tuple[int, int]:
    """Counts of non-finite samples and of finite ones beyond +-``MAX_SAMPLE_ABS`` in ``x``.

    One comparison on the usual, clean path (NaN compares False, so it fails that test too);
    the element-wise counts only run when something is wrong.
    """
    magnitude = np.abs(x)
    if (magnitude <= MAX_SAMPLE_ABS).all():
        return 0, 0
    finite = np.isfinite(x)
    return int((~finite).sum()), int((finite & (magnitude > MAX_SAMPLE_ABS)).sum())


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _describe(x: object) -> str:
    if isinstance(x, np.ndarray):
        return f"{x.dtype} array of shape {x.shape}"
    return type(x).__name__
