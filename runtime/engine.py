"""The streaming engine: blocks of audio in, one classified window per hop out.

    block (any size, any rate, mono or multi-channel float32)
      -> to_mono -> StreamResampler (soxr, to the model's rate)
      -> RingBuffer (exactly one window, preallocated)
      -> every hop: Model.predict -> Smoother (last k windows) -> top-k, event

No I/O and no sources here: ``runtime.sources`` produces blocks, ``runtime.live``
wires the two together.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from runtime.dsp import RingBuffer, Smoother, StreamResampler, bad_samples, rms, to_mono, top_k
from runtime.errors import ConfigError
from runtime.limits import MAX_SAMPLE_ABS, MAX_SMOOTH_WINDOWS
from runtime.model import Model

# Well under quiet speech into a phone mic (about -45 to -30 dBFS over a 1 s window) and
# above digital silence and a typical mic noise floor, which the in-graph RMS normalisation
# would otherwise turn into confident labels.
DEFAULT_SILENCE_DB = -60.0


@dataclass(frozen=True)
class EngineConfig:
    """How windows are cut and how their outputs are turned into labels.

    Attributes:
        hop_samples: samples (at the model's rate) between window starts;
            ``None``: the model metadata's ``hop_samples``.
        smooth: average the probabilities of the last ``smooth`` windows (1 = off).
        threshold: a smoothed top score must reach this to raise an event.
        top_k: how many labels each result lists.
        silence_db: a window whose RMS is below this level (dBFS, full scale = 1.0) is
            silence: it raises no event, restarts the smoothing and ends the last event,
            so the same word said twice gives two events. ``None``: classify every window.
            Why a gate at all: the models normalise each window to unit RMS inside the
            graph, so digital silence or a mic's noise floor is blown up to full scale
            and read as some class with confidence (an all-zero file scored 0.97 "6").
    """

    hop_samples: int | None = None
    smooth: int = 3
    threshold: float = 0.5
    top_k: int = 3
    silence_db: float | None = DEFAULT_SILENCE_DB

    def __post_init__(self) -> None:
        if self.hop_samples is not None and self.hop_samples < 1:
            raise ConfigError(f"hop must be at least one sample, got {self.hop_samples}")
        if not 1 <= self.smooth <= MAX_SMOOTH_WINDOWS:
            raise ConfigError(f"smoothing must cover 1 to {MAX_SMOOTH_WINDOWS} windows, got {self.smooth}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.top_k < 1:
            raise ConfigError(f"top-k must be at least 1, got {self.top_k}")
        if self.silence_db is not None and not (math.isfinite(self.silence_db) and self.silence_db <= 0):
            raise ConfigError(f"silence level must be a finite dBFS value at most 0, got {self.silence_db}")


@dataclass(frozen=True)
class WindowResult:
    """One classified window.

    Attributes:
        index: 0, 1, 2, ... since the last reset.
        start_sample / end_sample: the window's span at the model's rate,
            counted from the first sample pushed (a stream shorter than one window,
            classified padded: the audio it had, 0 to its length).
        probs: ``float32 (classes,)``, this window's model output.
        smoothed: ``float32 (classes,)``, mean of the last ``smooth`` outputs.
        top: the ``top_k`` (label, smoothed score) pairs, best first.
        event: the new label if the smoothed top label changed and reached the
            threshold on this window, else ``None``.
        rms: the window's RMS (to tell sound from silence).
        silent: ``rms`` is under ``EngineConfig.silence_db``: no event, smoothing restarted,
            ``smoothed`` is this window's own output.
        latency_s: wall time of ``Model.predict`` (quantize + invoke + dequantize).
        invoke_s: the backend's invoke alone.
    """

    index: int
    start_sample: int
    end_sample: int
    sample_rate: int
    probs: np.ndarray
    smoothed: np.ndarray
    top: tuple[tuple[str, float], ...]
    event: str | None
    rms: float
    latency_s: float
    invoke_s: float
    silent: bool = False

    @property
    def time_s(self) -> float:
        """End of the window, seconds since the stream started."""
        return self.end_sample / self.sample_rate

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "time": round(self.time_s, 4),
            "top": [{"label": label, "score": round(score, 5)} for label, score in self.top],
            "event": self.event,
            "rms": round(self.rms, 6),
            "silent": self.silent,
            "latency_ms": round(self.latency_s * 1e3, 4),
        }


class StreamingEngine:
    """Turns a stream of blocks at ``input_rate`` into :class:`WindowResult` s.

    The first window ends at ``window_samples``; each following one ends
    ``hop`` samples later. The ring buffer holds exactly one window: incoming
    samples are written only up to the next window's end, that window is
    classified, then writing continues, so blocks of any size work without
    growing the buffer.
    """

    def __init__(self, model: Model, config: EngineConfig = EngineConfig(), input_rate: int | None = None) -> None:
        if config.threshold > model.top_score:  # smoothing averages scores, so it cannot reach higher either
            raise ConfigError(f"threshold {config.threshold:g} can never be reached: {model.path.name} is quantized and its "
                              f"scores top out at {model.top_score:.4f}; use at most that")
        self.model = model
        self.config = config
        self.sample_rate = model.sample_rate
        self.window = model.window_samples
        self.hop = config.hop_samples or model.metadata.hop_samples
        self.input_rate = int(input_rate or model.sample_rate)
        self._resampler = StreamResampler(self.input_rate, self.sample_rate)
        self._ring = RingBuffer(self.window)
        self._smoother = Smoother(config.smooth, len(model.labels))
        self._scratch = np.empty(self.window, dtype=np.float32)
        self.nonfinite_samples = 0  # NaN/inf input samples replaced (never reset: a run's total)
        self.clipped_samples = 0  # finite samples beyond +-MAX_SAMPLE_ABS clipped to it (a run's total too)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: empties the resampler, ring buffer and smoother."""
        self._resampler.reset()
        self._ring.reset()
        self._smoother.reset()
        self._next_end = self.window
        self._index = 0
        self._last_event: str | None = None

    @property
    def samples_seen(self) -> int:
        """Samples at the model's rate written so far."""
        return self._ring.total

    def push(self, block: np.ndarray) -> list[WindowResult]:
        """Feed one block; returns the windows it completed (possibly none).

        Args:
            block: ``float32``, ``(frames,)`` or ``(frames, channels)`` at ``input_rate``.
                Non-finite samples become 0 (NaN) or +-1 (inf), counted in ``nonfinite_samples``;
                finite ones beyond +-``MAX_SAMPLE_ABS`` are clipped to it, counted in ``clipped_samples``.
        """
        mono = to_mono(block)
        nonfinite, beyond = bad_samples(mono)
        if nonfinite or beyond:
            # A float file or driver can deliver NaN/inf or garbage; one such sample would make every
            # window it touches (and, through the resampler's filter, its neighbours) NaN.
            self.nonfinite_samples += nonfinite
            self.clipped_samples += beyond
            mono = np.clip(np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0), -MAX_SAMPLE_ABS, MAX_SAMPLE_ABS)
        return self._consume(self._resampler.process(mono))

    def flush(self, pad_short: bool = True) -> list[WindowResult]:
        """End of stream: drain the resampler's delay line.

        Windows are never padded with silence in the middle of a stream, but a
        stream shorter than one window (a 0.4 s spoken digit for a 1 s model)
        would otherwise give no result at all. With ``pad_short`` such a stream
        is classified once, centred in zeros — exactly how training pads a
        short clip (``train.windows``).
        """
        results = self._consume(self._resampler.process(np.zeros(0, np.float32), last=True))
        have = self._ring.total
        if pad_short and self._index == 0 and 0 < have < self.window:
            clip = self._ring.window(have, have).copy()
            left = (self.window - have) // 2
            self._ring.reset()
            self._ring.write(np.zeros(left, np.float32))
            self._ring.write(clip)
            self._ring.write(np.zeros(self.window - have - left, np.float32))
            self._next_end = self.window
            padded = self._classify()
            # Its span is the stream's audio, not the padded window's: a 0.48 s clip's one window ended at "1.0 s".
            results.append(dataclasses.replace(padded, start_sample=0, end_sample=have))
        return results

    def _consume(self, samples: np.ndarray) -> list[WindowResult]:
        results = []
        pos = 0
        n = samples.shape[0]
        while pos < n:
            need = self._next_end - self._ring.total
            take = min(need, n - pos)
            self._ring.write(samples[pos : pos + take])
            pos += take
            if self._ring.total == self._next_end:
                results.append(self._classify())
                self._next_end += self.hop
        return results

    def _classify(self) -> WindowResult:
        end = self._next_end
        window = self._ring.window(end, self.window, out=self._scratch)
        t0 = time.perf_counter()
        probs = self.model.predict(window)
        latency = time.perf_counter() - t0
        level = rms(window)
        gate = self.config.silence_db
        silent = gate is not None and level < 10.0 ** (gate / 20.0)
        if silent:  # the model still ran (latency stays per window); its answer is shown, not acted on
            self._smoother.reset()
            self._last_event = None
        smoothed = probs if silent else self._smoother.update(probs)
        labels = self.model.labels
        top = tuple((labels[i], score) for i, score in top_k(smoothed, self.config.top_k))
        event = None
        best, score = top[0]
        if not silent and best != self._last_event and score >= self.config.threshold:
            event = self._last_event = best
        result = WindowResult(
            index=self._index,
            start_sample=end - self.window,
            end_sample=end,
            sample_rate=self.sample_rate,
            probs=probs,
            smoothed=smoothed,
            top=top,
            event=event,
            rms=level,
            latency_s=latency,
            invoke_s=self.model.last_invoke_s,
            silent=silent,
        )
        self._index += 1
        return result


def offline_windows(model: Model, signal: np.ndarray, hop: int) -> np.ndarray:
    """Reference: the model on every full window of a whole mono signal at the
    model's rate, hop ``hop``; ``float32 (windows, classes)``. Used by tests and
    benchmarks to check the streaming path."""
    n = model.window_samples
    ends = range(n, signal.shape[0] + 1, hop)
    return np.stack([model.predict(np.ascontiguousarray(signal[e - n : e], dtype=np.float32)) for e in ends]) if len(ends) else np.zeros((0, len(model.labels)), np.float32)
