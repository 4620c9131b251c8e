"""The facts every exported model carries about itself, and how to read them back.

This module is the single contract between ``export`` (which writes) and
``runtime`` (which reads). No TensorFlow here.

Where the facts live:
  * ``.tflite``: standard TFLite Model Metadata (for MediaPipe) **and**, among the
    metadata's associated files (a zip archive appended to the flatbuffer),
    ``labels.txt`` and ``tinyaudio.json`` (this dataclass as JSON);
  * ``.onnx``: ``metadata_props`` key ``tinyaudio`` (this dataclass as JSON);
  * beside any model file: ``metadata.json`` (a superset: this plus hashes,
    training summary), used as the fallback.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.limits import MAX_RATE, MAX_WINDOW_SECONDS

FORMAT = "tinyaudio-model/1"
JSON_NAME = "tinyaudio.json"
LABELS_NAME = "labels.txt"
ONNX_KEY = "tinyaudio"


class MetadataError(ValueError):
    """A model file's metadata is missing or unreadable."""


def label_problem(label: object) -> str | None:
    """Why ``label`` cannot name a class in an exported model, or None. labels.txt (read by
    MediaPipe and Android apps) holds one label per line, so a line break or other control
    character would split or corrupt the list; leading or trailing spaces vanish in many readers."""
    if not isinstance(label, str) or not label:
        return "is not a non-empty string"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in label):
        return "holds a line break or other control character"
    if label != label.strip():
        return "starts or ends with white space"
    return None


@dataclass(frozen=True)
class ModelMetadata:
    """What a runtime must know to feed a model and read its output.

    Attributes:
        name: model name (zoo key, e.g. ``"lv24"``).
        labels: class names, in output order.
        sample_rate: Hz the model expects; input audio must be resampled to it.
        window_samples: samples per inference window (the model's input length).
        hop_samples: suggested hop between windows when streaming.
        input_dtype: ``"float32"`` or ``"int8"`` (full-integer models).
        preprocessing: what the graph itself does to the raw PCM input (the
            caller passes raw mono PCM in [-1, 1], nothing else).
        config: the ``train.config.ModelConfig`` it was built from, as a dict.
        version: model version string.
    """

    name: str
    labels: tuple[str, ...]
    sample_rate: int
    window_samples: int
    hop_samples: int
    input_dtype: str = "float32"
    preprocessing: str = "per-sample RMS normalisation inside the graph"
    config: dict[str, Any] = field(default_factory=dict)
    version: str = "1"
    format: str = FORMAT

    def __post_init__(self) -> None:
        # Read from a file anyone can edit: a float hop, a NaN or absurd rate, or labels
        # given as one string would otherwise surface as a traceback, a hang or a
        # silently wrong label list far from here.
        if not isinstance(self.name, str) or not self.name:
            raise MetadataError(f"metadata name must be a non-empty string, got {self.name!r}")
        for key in ("sample_rate", "window_samples", "hop_samples"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise MetadataError(f"metadata {key} must be a positive whole number, got {value!r}")
        if self.sample_rate > MAX_RATE:
            raise MetadataError(f"metadata sample_rate must be at most {MAX_RATE} Hz, got {self.sample_rate}")
        longest = MAX_WINDOW_SECONDS * self.sample_rate
        if self.window_samples > longest or self.hop_samples > longest:
            raise MetadataError(
                f"metadata window_samples and hop_samples must be at most {MAX_WINDOW_SECONDS} s "
                f"({longest} samples at {self.sample_rate} Hz), got {self.window_samples} and {self.hop_samples}"
            )
        if isinstance(self.labels, (str, bytes)) or not isinstance(self.labels, (list, tuple)):
            raise MetadataError(f"metadata labels must be a list of class names, got {type(self.labels).__name__}")
        if not self.labels:
            raise MetadataError("metadata has no labels")
        for label in self.labels:
            why = label_problem(label)
            if why:
                raise MetadataError(f"metadata label {label!r} {why}")
        if len(set(self.labels)) != len(self.labels):
            raise MetadataError("metadata labels must be distinct (each names one output)")
        object.__setattr__(self, "labels", tuple(self.labels))

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["labels"] = list(self.labels)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelMetadata":
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as e:
            raise MetadataError(f"incomplete model metadata: {e}") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> "ModelMetadata":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError (binary junk), deep nesting
            raise MetadataError(f"model metadata is not valid JSON: {str(e)[:200]}") from None
        if not isinstance(data, dict):
            raise MetadataError("model metadata is not a JSON object")
        return cls.from_dict(data)


def tflite_associated_files(model_bytes: bytes) -> dict[str, bytes]:
    """The associated files packed into a ``.tflite`` by the metadata populator
    (a zip archive appended to the flatbuffer); ``{}`` when there are none."""
    try:
        with zipfile.ZipFile(io.BytesIO(model_bytes)) as z:
            return {name: z.read(name) for name in z.namelist()}
    except zipfile.BadZipFile:
        return {}


def read_metadata(path: str | Path, model_bytes: bytes | None = None) -> ModelMetadata:
    """Metadata of the model file at ``path``: from inside the file, else from
    ``metadata.json`` beside it. Raises :class:`MetadataError` if neither has it."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        data = model_bytes if model_bytes is not None else path.read_bytes()
        files = tflite_associated_files(data)
        if JSON_NAME in files:
            return parse_metadata(files[JSON_NAME], f"{path.name} (the metadata inside)")
    elif suffix == ".onnx":
        text = _onnx_metadata(path)
        if text is not None:
            return parse_metadata(text, f"{path.name} (the metadata inside)")
    sidecar = path.with_name("metadata.json")
    if sidecar.is_file():
        return parse_metadata(sidecar.read_bytes(), str(sidecar))
    raise MetadataError(f"{path.name}: no tinyaudio metadata inside the file and no metadata.json beside it")


def parse_metadata(text: str | bytes, where: str) -> ModelMetadata:
    """``ModelMetadata.from_json``, its error naming the file it came from (several models may share a folder)."""
    try:
        return ModelMetadata.from_json(text)
    except MetadataError as e:
        raise MetadataError(f"{where}: {e}") from None


def _onnx_metadata(path: Path) -> str | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    try:
        meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
    except Exception as e:  # onnxruntime raises its own exception types for broken files
        raise MetadataError(f"{path.name}: not a readable ONNX model ({type(e).__name__})") from None
    return meta.custom_metadata_map.get(ONNX_KEY)
