"""Typed, frozen model configuration shared by the zoo, training and export.

One ``ModelConfig`` fully determines a model's graph. It is plain data (JSON
round-trips through :meth:`ModelConfig.to_dict` / :meth:`ModelConfig.from_dict`)
so it can be embedded in every artifact the toolkit writes.

Defaults follow ``shared/docs/model-spec.md``; every parameter the papers leave
unstated (marked *(choice)* there) is a field here with the spec's default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

ONE_D = "1d"
TWO_D = "2d"

# Sample rates the 1D family is defined for, with the factor applied to the
# paper's pool sizes: the 1D paper halves every pool at 8 kHz (FSDD).
ONE_D_RATES: dict[int, int] = {22050: 1, 8000: 2}
TWO_D_RATES: tuple[int, ...] = (22050,)

# Default window lengths in seconds, per family (1D paper: 1 s; 2D paper: 4 s).
DEFAULT_WINDOW_SECONDS = {ONE_D: 1.0, TWO_D: 4.0}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build one zoo model.

    Attributes:
        name: registry key, e.g. ``"lv18"`` or ``"convdb"``.
        num_classes: size of the softmax output.
        sample_rate: input rate in Hz; 1D models: 22050 or 8000, 2D: 22050.
        input_samples: window length in samples; ``None`` = the paper's window
            (1 s for 1D, 4 s for 2D) at ``sample_rate``.
        dropout: dropout rate after every block *(choice: 0.25)*.
        rms_floor: the per-sample RMS normalisation divides by
            ``max(rms, rms_floor)`` so silence gives zeros, not NaN *(choice)*.
        roll_shifts: RollMix's number of circular shifts N *(choice: 4)*.
        sinc_filters / sinc_length / sinc_stride: SincNet's first layer.
        sinc_min_low_hz / sinc_min_band_hz: SincNet's lower bounds (50 Hz).
        sinc_hz_per_unit: units of SincNet's trainable cut-offs, in Hz;
            ``None`` = the sample rate (they adapt), 1.0 = plain Hz (Adam at
            lr 1e-3 barely moves them); see ``SincConv1D``. A stored config
            from before this field existed read as 1.0: it was trained in Hz.
        n_fft / hop_length / n_mels / fmin / fmax: the 2D mel front end.
            hop 256 is fixed by the paper's 345 frames for 88200 samples; the
            FFT size is a choice: 1024 keeps the exported constants small
            (see ``train.layers.LogMelSpectrogram``).
        mel_log_floor: added to mel energies before the log.
        head_segments: 1D family only. 1 = the papers' head, global average
            pooling over time (the classifier sees the mean of frame features,
            not their order). S > 1 (ours, not in the papers): the last feature
            map is averaged into S equal time segments, kept in order and
            flattened into the head, so the classifier can tell "a then b"
            from "b then a" (``python -m train.order_probe`` shows the papers'
            head cannot).
    """

    name: str
    num_classes: int = 10
    sample_rate: int = 22050
    input_samples: int | None = None
    dropout: float = 0.25
    rms_floor: float = 1e-4
    roll_shifts: int = 4
    sinc_filters: int = 32
    sinc_length: int = 251
    sinc_stride: int = 2
    sinc_min_low_hz: float = 50.0
    sinc_min_band_hz: float = 50.0
    sinc_hz_per_unit: float | None = None
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 120
    fmin: float = 0.0
    fmax: float | None = None
    mel_log_floor: float = 1e-6
    head_segments: int = 1
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if self.input_samples is not None and self.input_samples <= 0:
            raise ValueError(f"input_samples must be positive, got {self.input_samples}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.head_segments < 1:
            raise ValueError(f"head_segments must be >= 1, got {self.head_segments}")
        if self.sinc_length % 2 == 0:
            raise ValueError(f"sinc_length must be odd, got {self.sinc_length}")

    def window_samples(self, family: str) -> int:
        """Window length in samples for a model of ``family`` ("1d"/"2d")."""
        if self.input_samples is not None:
            return self.input_samples
        return int(round(DEFAULT_WINDOW_SECONDS[family] * self.sample_rate))

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {', '.join(unknown)}")
        return cls(**{"sinc_hz_per_unit": 1.0, **data})  # stored before the field existed: trained in Hz
