"""Finding and loading the model to export: a ``.keras`` file or a training run folder.

Run folder layout (from ``python -m train``): ``runs/NAME/`` holds
``summary.json`` and per-fold ``.keras`` checkpoints, each with a
``config.json`` beside it (a ModelConfig under ``model_config`` or at top level,
and ``labels``). Optional keys used when present: ``test_dir`` / ``train_dir``
(folders of held-out / training audio) and ``label_source``.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from export.config import ExportError


@dataclass(frozen=True)
class Source:
    """A model to export and what is known about it.

    Attributes:
        model: the loaded Keras model (input (batch, window) float32).
        model_config: ``train.config.ModelConfig``.
        labels: class names in output order.
        path: the ``.keras`` file.
        summary: training summary (``{}`` when unknown).
        info: the config.json beside the checkpoint (``{}`` when absent).
    """

    model: object
    model_config: object
    labels: tuple[str, ...]
    path: Path
    summary: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def read_json_object(path: Path) -> dict:
    """A JSON object file, or an ExportError naming it (truncated, binary junk, not an object)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, deep nesting
        raise ExportError(f"{path}: unreadable JSON ({e})") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path}: expected a JSON object")
    return data


def load_keras(path: Path):
    """Load a ``.keras`` file with ``safe_mode=True`` (zoo layers registered)."""
    from train.quiet import import_keras

    keras = import_keras()  # without TensorFlow's start-up banner on stderr

    import train.layers  # noqa: F401  (registers the zoo's custom layers)

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"model file not found: {path}")
    # A .keras file is a zip archive. Keras answers a corrupt one with "File not found",
    # which misleads when the file is right there.
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ExportError(f"cannot load {path.name}: unreadable or corrupt (not a .keras zip archive): {path}")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises TypeError/ValueError/... for unknown layers and bad files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = " (unknown custom layer? only the zoo's registered layers can be loaded)" if "nknown" in str(e) or "ould not locate" in str(e) else ""
        raise ExportError(f"cannot load {path.name}: {first[:200]}{hint}") from None


def infer_config(model, info: dict, sample_rate: int | None):
    """The ModelConfig: from config.json when present, else from the model itself."""
    from train.config import ModelConfig, ONE_D_RATES
    from train.models import REGISTRY

    data = info.get("model_config", info.get("config"))
    if isinstance(data, dict):
        try:
            return ModelConfig.from_dict(data)
        except (TypeError, ValueError) as e:
            raise ExportError(f"config.json: bad model config ({e})") from None
    name = model.name.lower()
    if name not in REGISTRY:
        raise ExportError(f"model {model.name!r} is not a zoo model and has no config.json; cannot tell its config")
    window = int(model.inputs[0].shape[1])
    if sample_rate is None:
        for layer in model.layers:
            if hasattr(layer, "sample_rate"):
                sample_rate = int(layer.sample_rate)
        if sample_rate is None and window in ONE_D_RATES:
            sample_rate = window
        if sample_rate is None:
            raise ExportError(f"cannot tell {model.name}'s sample rate from a {window}-sample input; pass --sample-rate")
    classes = int(model.outputs[0].shape[-1])
    units = {"sinc_hz_per_unit": layer.hz_per_unit for layer in model.layers if hasattr(layer, "hz_per_unit")}
    # --head-segments: its pooling layer (train.models._pool_time) keeps one step per segment
    segments = {"head_segments": int(layer.output.shape[1]) for layer in model.layers if layer.name.endswith("segments")}
    return ModelConfig(name=name, num_classes=classes, sample_rate=sample_rate, input_samples=window, **units, **segments)


def from_model_file(path: Path, labels=None, sample_rate: int | None = None) -> Source:
    """A ``.keras`` file; ``config.json`` beside it is used when present."""
    path = Path(path)
    model = load_keras(path)
    info = read_json_object(path.with_name("config.json")) if path.with_name("config.json").is_file() else {}
    config = infer_config(model, info, sample_rate)
    return Source(model, config, _labels(model, labels or info.get("labels")), path, info.get("summary", {}), info)


def from_run(run_dir: Path, fold: str | None = None, labels=None) -> Source:
    """The checkpoint of a training run (``fold``: a name part of the
    checkpoint to pick; default: the one summary.json names as ``best``, else the first)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ExportError(f"run folder not found: {run_dir}")
    summary = read_json_object(run_dir / "summary.json") if (run_dir / "summary.json").is_file() else {}
    checkpoints = sorted(run_dir.rglob("*.keras"))
    if fold is not None:
        checkpoints = [p for p in checkpoints if fold in str(p.relative_to(run_dir))]
    elif isinstance(summary.get("best"), str) and (run_dir / summary["best"]).is_file():
        checkpoints = [run_dir / summary["best"]]
    if not checkpoints:
        raise ExportError(f"no .keras checkpoint in run folder {run_dir}" + (f" matching fold {fold!r}" if fold else ""))
    src = from_model_file(checkpoints[0], labels)
    info = dict(src.info)
    for key in ("test_dir", "train_dir"):
        if isinstance(info.get(key), str) and not Path(info[key]).is_absolute():
            info[key] = str((checkpoints[0].parent / info[key]).resolve())
    return Source(src.model, src.model_config, src.labels, src.path, summary or src.summary, info)


def _labels(model, labels) -> tuple[str, ...]:
    classes = int(model.outputs[0].shape[-1])
    if labels is None:
        return tuple(f"class_{i}" for i in range(classes))
    labels = tuple(str(v) for v in labels)
    if len(labels) != classes:
        raise ExportError(f"{len(labels)} labels given for a model with {classes} outputs")
    return labels
