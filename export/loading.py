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
from runtime.files import PARTIAL


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
            config = ModelConfig.from_dict(data)
        except (TypeError, ValueError) as e:
            raise ExportError(f"config.json: bad model config ({e})") from None
        # the model was built (and trained) for its config's rate: another --sample-rate would not
        # change the model, only what its metadata claims, so it was silently ignored
        if sample_rate is not None and sample_rate != config.sample_rate:
            raise ExportError(f"--sample-rate {sample_rate} disagrees with the model's {config.sample_rate} Hz "
                              f"(config.json beside it): leave --sample-rate out")
        return config
    name = model.name.lower()
    if name not in REGISTRY:
        raise ExportError(f"model {model.name!r} is not a zoo model and has no config.json; cannot tell its config")
    window = int(model.inputs[0].shape[1])
    built_for = [int(layer.sample_rate) for layer in model.layers if hasattr(layer, "sample_rate")]
    if built_for and sample_rate is not None and sample_rate != built_for[-1]:
        # its log-mel front end computes its filterbank for one rate: the metadata must not claim another
        raise ExportError(f"--sample-rate {sample_rate} disagrees with the {built_for[-1]} Hz {model.name}'s "
                          "front end was built for: leave --sample-rate out")
    if sample_rate is None:
        sample_rate = built_for[-1] if built_for else None
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
    trained = info.get("labels")
    if labels is not None and trained is not None and [str(v) for v in trained] != list(labels):
        # the outputs mean what training made them mean: other names would pass every check and ship wrong
        shown = ",".join(map(str, trained))
        raise ExportError(f"--labels {','.join(labels)} disagree with the labels the model was trained with "
                          f"({shown}, config.json beside it): leave --labels out")
    return Source(model, config, _labels(model, labels or trained), path, info.get("summary", {}), info)


def from_run(run_dir: Path, fold: str | None = None, labels=None, sample_rate: int | None = None) -> Source:
    """The checkpoint of a training run that :func:`pick_checkpoint` names."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ExportError(f"run folder not found: {run_dir}")
    summary = read_json_object(run_dir / "summary.json") if (run_dir / "summary.json").is_file() else {}
    checkpoint = pick_checkpoint(run_dir, fold, summary)
    src = from_model_file(checkpoint, labels, sample_rate)
    info = dict(src.info)
    for key in ("test_dir", "train_dir"):
        if isinstance(info.get(key), str) and not Path(info[key]).is_absolute():
            info[key] = str((checkpoint.parent / info[key]).resolve())
    return Source(src.model, src.model_config, src.labels, src.path, summary or src.summary, info)


FOLD_HELP = ("--run: the checkpoint in the run folder named FOLD (e.g. fold_2, final), else the one whose path "
             "contains FOLD; several matches are an error. Without --fold: the checkpoint summary.json names as "
             "best if any, else the first in path order, i.e. final/model.keras when the run was trained with "
             "--final, else fold_0/model.keras")


def run_checkpoints(run_dir: Path) -> list[Path]:
    """The run's ``.keras`` checkpoints in path order. A save killed midway leaves
    ``.model.keras.XXXX.partial.keras`` (runtime.files.atomic_path), which sorts first: never one."""
    return sorted(p for p in Path(run_dir).rglob("*.keras") if PARTIAL not in p.name)


def pick_checkpoint(run_dir: Path, fold: str | None, summary: dict) -> Path:
    """``fold`` None: as :data:`FOLD_HELP` says. Otherwise the checkpoint whose folder is named
    ``fold`` (or whose relative folder or file path is ``fold``); failing that, the one whose
    relative path contains it. Several matches are an error listing them: "fold_1" must not
    quietly take fold_1 of the wrong model, nor fold_10."""
    checkpoints = run_checkpoints(run_dir)
    if not checkpoints:
        raise ExportError(f"no .keras checkpoint in run folder {run_dir}")
    if fold is None:
        best = summary.get("best")
        if isinstance(best, str) and PARTIAL not in best and (run_dir / best).is_file():
            return run_dir / best
        return checkpoints[0]
    rel = {p: p.relative_to(run_dir) for p in checkpoints}
    exact = [p for p in checkpoints
             if fold in (rel[p].as_posix(), rel[p].parent.as_posix()) or fold in rel[p].parent.parts]
    matches = exact or [p for p in checkpoints if fold in rel[p].as_posix()]
    if len(matches) == 1:
        return matches[0]
    shown = matches or checkpoints
    listing = ", ".join(rel[p].as_posix() for p in shown[:8]) + (", ..." if len(shown) > 8 else "")
    if not matches:
        raise ExportError(f"--fold {fold!r} matches no checkpoint in {run_dir} (checkpoints: {listing})")
    raise ExportError(f"--fold {fold!r} matches {len(matches)} checkpoints in {run_dir}: {listing}; "
                      f"give one folder exactly (e.g. --fold {rel[matches[0]].parent.as_posix()})")


def _labels(model, labels) -> tuple[str, ...]:
    classes = int(model.outputs[0].shape[-1])
    if labels is None:
        return tuple(f"class_{i}" for i in range(classes))
    labels = tuple(str(v) for v in labels)
    if len(labels) != classes:
        raise ExportError(f"{len(labels)} labels given for a model with {classes} outputs")
    return labels


if __name__ == "__main__":  # a library module: `python -m` would import it, do nothing and exit 0
    raise SystemExit("error: export.loading is a library module, not a command (see python -m export --help)")
