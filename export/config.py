"""Export settings (a frozen dataclass), the artifact catalogue and the project exception.

No TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class ExportError(Exception):
    """A bad input or a failed export step; ``str(e)`` is a one-line message."""


def require_positive(*options: tuple[str, int | None]) -> None:
    """Refuse a command-line count or rate below 1, naming the option
    (argparse's ``type=int`` happily takes -8000, which fails deep inside later)."""
    for option, value in options:
        if value is not None and value < 1:
            raise ExportError(f"{option} must be >= 1, got {value}")


@dataclass(frozen=True)
class Artifact:
    """One exported file.

    Attributes:
        key: stable id used in metadata.json / parity.json (e.g. ``"tflite_int8"``).
        filename: file name inside the export folder.
        kind: ``"tflite"`` or ``"onnx"``.
        precision: ``"float"`` (judged on top-1 agreement with Keras) or
            ``"int8"`` (judged on the accuracy it loses).
    """

    key: str
    filename: str
    kind: str
    precision: str
    description: str


ARTIFACTS: tuple[Artifact, ...] = (
    Artifact("tflite_float32", "model_float32.tflite", "tflite", "float", "TFLite, float32"),
    Artifact("tflite_float16", "model_float16.tflite", "tflite", "float", "TFLite, float16 weights, float32 compute"),
    Artifact("tflite_dynamic_int8", "model_dynamic_int8.tflite", "tflite", "int8",
             "TFLite, dynamic-range: int8 weights, float activations"),
    Artifact("tflite_int8", "model_int8.tflite", "tflite", "int8",
             "TFLite, full-integer: int8 weights and activations, float32 input/output"),
    Artifact("onnx_float32", "model_float32.onnx", "onnx", "float", "ONNX (tf2onnx), float32"),
    Artifact("onnx_int8", "model_int8.onnx", "onnx", "int8",
             "ONNX, onnxruntime static quantization (QDQ, int8 weights and activations)"),
)
ARTIFACT_KEYS: tuple[str, ...] = tuple(a.key for a in ARTIFACTS)
# Artifacts whose activation ranges come from calibration audio (dynamic-range int8 quantizes weights only).
CALIBRATED_KEYS = frozenset({"tflite_int8", "onnx_int8"})
FRONT_END_MODES = ("auto", "int8", "float")
ONNX_CALIBRATIONS = ("auto", "percentile", "minmax")  # auto: build the others, keep the closer to Keras


def artifact(key: str) -> Artifact:
    for a in ARTIFACTS:
        if a.key == key:
            return a
    raise ExportError(f"unknown artifact {key!r}; choose from: {', '.join(ARTIFACT_KEYS)}")


@dataclass(frozen=True)
class ExportConfig:
    """How to export one model.

    Attributes:
        out_dir: export folder (created; files are written atomically).
        formats: artifact keys to write (default: all six).
        version: model version string written into every file's metadata.
        hop_samples: suggested streaming hop; ``None`` = half a window.
        max_representative: most calibration windows used for int8.
        max_windows_per_clip: a long clip contributes at most this many windows.
        front_end: 2D models only, full-integer TFLite: ``"int8"`` quantizes the
            log-mel front end too, ``"float"`` keeps it (and the normalisation)
            in float, ``"auto"`` builds both and keeps the one that agrees
            better with Keras on the calibration windows (both measured).
        onnx_calibration: int8 ONNX activation ranges: ``"percentile"`` (99.999th,
            default), ``"minmax"``, or ``"auto"``: both built, the one that agrees
            better with Keras on the calibration windows kept. Neither wins on every
            model (``python -m export.quant_probe``).
        opset: ONNX opset.
        float_min_agreement: float artifacts must agree (top-1) with Keras on at
            least this fraction of parity windows.
        int8_max_accuracy_drop: int8 artifacts may lose at most this much
            accuracy (fraction, 0.01 = 1 point) against Keras.
        check: run the parity check after exporting (needs test audio).
    """

    out_dir: Path
    formats: tuple[str, ...] = ARTIFACT_KEYS
    version: str = "1"
    hop_samples: int | None = None
    max_representative: int = 200
    max_windows_per_clip: int = 4
    front_end: str = "auto"
    onnx_calibration: str = "percentile"
    opset: int = 17
    float_min_agreement: float = 0.995
    int8_max_accuracy_drop: float = 0.01
    check: bool = True
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        for key in self.formats:
            artifact(key)
        if not self.formats:
            raise ExportError("no export formats selected")
        if self.front_end not in FRONT_END_MODES:
            raise ExportError(f"front_end must be one of {FRONT_END_MODES}, got {self.front_end!r}")
        if self.onnx_calibration not in ONNX_CALIBRATIONS:
            raise ExportError(f"onnx_calibration must be one of {ONNX_CALIBRATIONS}, got {self.onnx_calibration!r}")
        if self.max_representative < 1 or self.max_windows_per_clip < 1:
            raise ExportError("max_representative and max_windows_per_clip must be >= 1")
        if not 0.0 < self.float_min_agreement <= 1.0:  # also refuses NaN
            raise ExportError(f"float_min_agreement must be a fraction in (0, 1], got {self.float_min_agreement}")
        if not 0.0 <= self.int8_max_accuracy_drop <= 1.0:
            raise ExportError(f"int8_max_accuracy_drop must be a fraction in [0, 1] (0.01 = 1 point), "
                              f"got {self.int8_max_accuracy_drop}")
        if self.hop_samples is not None and self.hop_samples < 1:
            raise ExportError(f"hop_samples must be >= 1, got {self.hop_samples}")

    @property
    def artifacts(self) -> tuple[Artifact, ...]:
        return tuple(a for a in ARTIFACTS if a.key in self.formats)


if __name__ == "__main__":  # a library module: `python -m` would import it, do nothing and exit 0
    raise SystemExit("error: export.config is a library module, not a command (see python -m export --help)")
