"""Training-time augmentation of raw PCM windows: random time shift, speed, gain and additive noise.

Applied only to training batches (see ``train.fit``); validation and test never see it.
Pure numpy with an explicit ``Generator`` so runs are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr


EQ_BANDS = 8  # control points of the random equaliser's gain curve
MASK_FRACTION = 0.1  # widest time or frequency mask, as a fraction of the window / log-frequency axis
# Bounds of the settings (Augment.__post_init__). ±40 dB between equaliser bands is a 100x amplitude
# swing, far past any microphone or room; more only wrecks the window (and inf overflows the draw).
EQ_MAX_DB = 40.0
# Two octaves either way: past that speech and most sounds are unrecognisable, and the resampled
# copy of each window grows as 1 / speed (a speed of 1e-6 would ask for a million windows' memory).
SPEED_LIMITS = (0.25, 4.0)
# Each mask removes up to MASK_FRACTION: ten time masks can already blank a whole window.
MASKS_MAX = 10
# Gain and SNR ranges: 120 dB is past 24-bit audio's whole dynamic range; beyond it float32 only
# under- or overflows.
DB_LIMIT = 120.0


@dataclass(frozen=True)
class Augment:
    """Augmentation settings.

    Attributes:
        shift: largest time shift, as a fraction of the window (applied to the
            window's start offset in the clip, so real audio, not zeros, slides in).
        gain_db: gain range in dB. The models normalise each window by its RMS, so
            gain mostly matters together with noise and for quantised exports.
        snr_db: additive white noise at a signal-to-noise ratio drawn from this
            range (dB, relative to the window's RMS).
        noise_prob: probability that a window gets noise at all.
        speed: playback-speed factor range (changes tempo and pitch together, a cheap
            stand-in for speaker variation); ``(1.0, 1.0)`` turns it off.
        eq_db: random equaliser, a stand-in for microphone and room differences: each window
            is filtered by a smooth random gain curve, up to this many dB at each of
            ``EQ_BANDS`` log-spaced frequencies (0 turns it off).
        masks: SpecAugment-style masking done on the waveform, so it suits 1D and 2D models
            alike: this many time masks (each zeroes up to ``MASK_FRACTION`` of the window) and
            as many frequency masks (each filters out up to ``MASK_FRACTION`` of the
            log-frequency axis, where mel bands live); 0 turns it off.
    """

    shift: float = 0.1
    gain_db: tuple[float, float] = (-6.0, 6.0)
    snr_db: tuple[float, float] = (15.0, 40.0)
    noise_prob: float = 0.5
    speed: tuple[float, float] = (1.0, 1.0)
    eq_db: float = 0.0
    masks: int = 0

    def __post_init__(self) -> None:
        # Every bound is written "not LO <= x <= HI" so NaN fails too; inf must fail here and not
        # as an OverflowError traceback from rng.uniform in the first training batch.
        lo, hi = self.speed
        if not SPEED_LIMITS[0] <= lo <= hi <= SPEED_LIMITS[1]:
            raise ValueError(f"speed range must be {SPEED_LIMITS[0]:g} <= LO <= HI <= {SPEED_LIMITS[1]:g}, not {lo} {hi}")
        if not 0.0 <= self.eq_db <= EQ_MAX_DB:
            raise ValueError(f"eq must be 0 (off) or a positive number of dB up to {EQ_MAX_DB:g}, not {self.eq_db}")
        if not 0 <= self.masks <= MASKS_MAX:
            raise ValueError(f"masks must be 0 (off) to {MASKS_MAX}, not {self.masks}")
        if not 0.0 <= self.shift <= 1.0:
            raise ValueError(f"shift must be a fraction of the window between 0 and 1, not {self.shift}")
        if not 0.0 <= self.noise_prob <= 1.0:
            raise ValueError(f"noise probability must be between 0 and 1, not {self.noise_prob}")
        for name, (lo, hi) in (("gain", self.gain_db), ("snr", self.snr_db)):
            if not -DB_LIMIT <= lo <= hi <= DB_LIMIT:
                raise ValueError(f"{name} range must be -{DB_LIMIT:g} <= LO <= HI <= {DB_LIMIT:g} dB, not {lo} {hi}")

    def shifts(self, rng: np.random.Generator, n: int, window: int) -> np.ndarray:
        """Random start offsets to add: int64 (n,) in [-shift*window, shift*window]."""
        m = int(self.shift * window)
        return rng.integers(-m, m + 1, size=n) if m > 0 else np.zeros(n, dtype=np.int64)

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Gain and noise on a batch: float32 (n, samples) -> float32 (n, samples)."""
        n = batch.shape[0]
        batch = self.change_speed(batch, rng.uniform(*self.speed, size=n))
        if self.eq_db > 0.0:  # drawn only when on, so runs without it keep their random stream
            batch = self.equalise(batch, rng.uniform(-self.eq_db, self.eq_db, size=(n, EQ_BANDS)))
        if self.masks > 0:
            batch = self.mask(batch, rng, self.masks)
        gain = 10.0 ** (rng.uniform(*self.gain_db, size=(n, 1)) / 20.0)
        out = batch * gain
        rms = np.sqrt(np.mean(out**2, axis=1, keepdims=True)) + 1e-8
        snr = rng.uniform(*self.snr_db, size=(n, 1))
        noise_rms = rms / (10.0 ** (snr / 20.0)) * (rng.random((n, 1)) < self.noise_prob)
        out = out + rng.standard_normal(out.shape) * noise_rms
        return out.astype(np.float32)

    @staticmethod
    def equalise(batch: np.ndarray, band_db: np.ndarray) -> np.ndarray:
        """Filter each row by a smooth gain curve through ``band_db`` (n, EQ_BANDS) dB at
        log-spaced frequencies from the lowest bin to Nyquist (linear in log frequency between
        them; zero phase). float32 (n, L) -> float32 (n, L)."""
        anchors = np.linspace(0.0, 1.0, band_db.shape[1])
        return _filter_log_frequency(
            batch, lambda logf: 10.0 ** (np.stack([np.interp(logf, anchors, row) for row in band_db]) / 20.0))

    @staticmethod
    def mask(batch: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` random frequency masks, then ``count`` time masks, each up to
        ``MASK_FRACTION`` wide. float32 (n, L) -> float32 (n, L)."""
        n, length = batch.shape
        width = rng.uniform(0.0, MASK_FRACTION, size=(n, count))
        out = Augment.mask_bands(batch, rng.uniform(0.0, 1.0, size=(n, count)) * (1.0 - width), width)
        span = (rng.uniform(0.0, MASK_FRACTION, size=(n, count)) * length).astype(np.int64)
        start = (rng.uniform(0.0, 1.0, size=(n, count)) * (length - span)).astype(np.int64)
        return Augment.mask_spans(out, start, span)

    @staticmethod
    def mask_bands(batch: np.ndarray, low: np.ndarray, width: np.ndarray) -> np.ndarray:
        """Remove bands [low, low + width) of each row, both (n, k) as fractions of the
        log-frequency axis (log(bin + 1), DC to Nyquist). float32 (n, L) -> float32 (n, L)."""
        def keep(logf: np.ndarray) -> np.ndarray:
            out = np.ones((low.shape[0], logf.size), dtype=bool)
            for k in range(low.shape[1]):
                out &= ~((logf[None] >= low[:, k:k + 1]) & (logf[None] < low[:, k:k + 1] + width[:, k:k + 1]))
            return out

        return _filter_log_frequency(batch, keep)

    @staticmethod
    def mask_spans(batch: np.ndarray, start: np.ndarray, span: np.ndarray) -> np.ndarray:
        """Zero samples [start, start + span) of each row, both int (n, k). float32 (n, L) -> float32 (n, L)."""
        t = np.arange(batch.shape[1])[None]
        hit = np.zeros(batch.shape, dtype=bool)
        for k in range(start.shape[1]):
            hit |= (t >= start[:, k:k + 1]) & (t < start[:, k:k + 1] + span[:, k:k + 1])
        return np.where(hit, 0.0, batch).astype(np.float32)

    @staticmethod
    def change_speed(batch: np.ndarray, factors: np.ndarray) -> np.ndarray:
        """Play each row ``f`` times as fast about its centre: out[t] = x(c + (t - c) * f),
        zeros outside. Band-limited (soxr): linear interpolation, used before, also low-passed
        every augmented window (-2 to -5 dB from 2 kHz to Nyquist, whatever ``f``), so the
        model trained on duller audio than it was tested on. float32 (n, L), factors (n,) ->
        float32 (n, L)."""
        n, length = batch.shape
        out = batch.astype(np.float32, copy=True)
        c = (length - 1) / 2.0
        t = np.arange(length)
        for i, f in enumerate(np.asarray(factors, dtype=np.float64)):
            if f == 1.0:
                continue
            y = soxr.resample(batch[i], f, 1.0, quality="MQ")  # y[k] = x(k * f); MQ: within 0.1 dB to 0.9 x Nyquist, ~2x faster than HQ
            src = t + int(round(c * (1.0 / f - 1.0)))  # out[t] = y[(c + (t - c) * f) / f]
            valid = (src >= 0) & (src < y.shape[0])
            out[i] = 0.0
            out[i, valid] = y[src[valid]]
        return out


def _filter_log_frequency(batch: np.ndarray, gain) -> np.ndarray:
    """Zero-phase filter of each row: rfft, times ``gain(axis)`` (n, bins), irfft. ``axis`` is
    log(bin + 1) / log(bins), 0 at DC to 1 at Nyquist, where mel bands are about evenly spread.
    float32 (n, L) -> float32 (n, L)."""
    spectrum = np.fft.rfft(batch, axis=1)
    axis = np.log(np.arange(spectrum.shape[1]) + 1.0) / np.log(spectrum.shape[1])
    return np.fft.irfft(spectrum * gain(axis), n=batch.shape[1], axis=1).astype(np.float32)
