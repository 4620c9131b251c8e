"""Deterministic probe signals: silence, noise, sines, chirps, clicks (numpy only).

Used for golden vectors (``android_demo_assets``), calibration of untrained
models in benchmarks, and tests. Every generator returns float32 mono PCM in
[-1, 1] with shape ``(samples,)`` and is a pure function of its arguments.
"""

from __future__ import annotations

import numpy as np


def silence(samples: int) -> np.ndarray:
    return np.zeros(samples, np.float32)


def noise(samples: int, amplitude: float = 0.5, seed: int = 0) -> np.ndarray:
    """Uniform white noise in [-amplitude, amplitude]."""
    return (amplitude * np.random.default_rng(seed).uniform(-1.0, 1.0, samples)).astype(np.float32)


def sine(samples: int, sample_rate: int, hz: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(samples, dtype=np.float64) / sample_rate
    return (amplitude * np.sin(2.0 * np.pi * hz * t)).astype(np.float32)


def chirp(samples: int, sample_rate: int, f0: float, f1: float, amplitude: float = 0.5) -> np.ndarray:
    """Linear sweep from ``f0`` to ``f1`` Hz over the whole signal."""
    t = np.arange(samples, dtype=np.float64) / sample_rate
    duration = samples / sample_rate
    phase = 2.0 * np.pi * (f0 * t + 0.5 * (f1 - f0) / duration * t**2)
    return (amplitude * np.sin(phase)).astype(np.float32)


def click(samples: int, position: int | None = None, amplitude: float = 1.0) -> np.ndarray:
    """One non-zero sample (an impulse) in silence."""
    x = silence(samples)
    x[samples // 2 if position is None else position] = amplitude
    return x


def probe_set(samples: int, sample_rate: int) -> dict[str, np.ndarray]:
    """A named set of probes covering silence, broadband, tonal and transient input.

    Frequencies are chosen inside the band of every supported rate (8 kHz has a
    4 kHz Nyquist limit).
    """
    nyquist = sample_rate / 2.0
    return {
        "silence": silence(samples),
        "noise_quiet": noise(samples, 0.01, seed=1),
        "noise_loud": noise(samples, 0.9, seed=2),
        "sine_250hz": sine(samples, sample_rate, 250.0),
        "sine_1khz": sine(samples, sample_rate, 1000.0),
        "sine_3khz": sine(samples, sample_rate, min(3000.0, 0.8 * nyquist)),
        "chirp_up": chirp(samples, sample_rate, 100.0, 0.9 * nyquist),
        "chirp_down": chirp(samples, sample_rate, 0.9 * nyquist, 100.0),
        "click": click(samples),
        "full_scale_square": np.sign(sine(samples, sample_rate, 440.0)).astype(np.float32),
    }


def calibration_windows(n: int, samples: int, sample_rate: int, seed: int = 0) -> np.ndarray:
    """``n`` varied windows (n, samples) float32: random mixes of tones, chirps and
    noise at random levels — a stand-in for training audio when a model is untrained."""
    rng = np.random.default_rng(seed)
    nyquist = sample_rate / 2.0
    out = np.empty((n, samples), np.float32)
    for i in range(n):
        f0, f1 = rng.uniform(50.0, 0.9 * nyquist, 2)
        x = chirp(samples, sample_rate, f0, f1, rng.uniform(0.05, 0.8))
        x += noise(samples, rng.uniform(0.0, 0.3), seed=int(rng.integers(1 << 30)))
        out[i] = np.clip(x, -1.0, 1.0)
    return out
