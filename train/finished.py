"""Finished ``python -m train`` runs read back: their config, their finished folds matched to the
data by name, and their fold models, for the tools that score them again (``train.order_probe``,
``train.ensemble``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from train.data import DataError, Dataset, read_json
from train.protocols import Fold, changed_counts, make_folds


def read_run(run: Path) -> dict:
    """``run``'s run.json; DataError (one line) for a folder that is no ``python -m train`` run."""
    if not (run / "run.json").is_file():
        raise DataError(f"{run}: no run.json; give a run folder written by python -m train")
    cfg = read_json(run / "run.json", str(run))
    if not isinstance(cfg, dict):
        raise DataError(f"{run}: run.json is not a JSON object; give a run folder written by python -m train")
    missing = [key for key in ("model", "dataset", "protocol") if key not in cfg]
    if missing:
        raise DataError(f"{run}: run.json lacks {', '.join(missing)}; give a run folder written by python -m train")
    return cfg


def run_folds(cfg: dict, dataset: Dataset) -> list[Fold]:
    """The folds a run was trained on, rebuilt on ``dataset`` from its run.json (protocol, seed, k,
    validation share and grouping; ``python -m train``'s defaults where a key is absent)."""
    return make_folds(dataset, cfg["protocol"], seed=cfg.get("seed", 0), k=cfg.get("k", 3),
                      val_fraction=cfg.get("val_fraction", 0.1), val_by=cfg.get("val_by", "recording"))


def matched_folds(run: Path, folds: list, data: Path) -> list[tuple[Path, object, dict]]:
    """(fold folder, train.protocols.Fold, result) of each finished fold of ``run``, matched by the
    name in its result.json among ``folds`` (what ``data`` gives), never by position: on other data
    fold_K can be another speaker's fold, whose training clips would then be scored as its test clips.
    DataError (one line) for a fold the data does not give, or gives with other clip counts."""
    by_name = {f.name: f for f in folds}
    dirs = sorted((d for d in run.glob("fold_*") if d.name[5:].isdigit() and (d / "result.json").is_file()),
                  key=lambda d: int(d.name[5:]))
    done = []
    for fold_dir in dirs:
        result = read_json(fold_dir / "result.json", str(run))
        if not isinstance(result, dict):
            raise DataError(f"{run}: {fold_dir.name}/result.json is not a JSON object; delete {fold_dir} and re-run "
                            "python -m train to train that fold again")
        if not isinstance(result.get("accuracy"), (int, float)):
            raise DataError(f"{run}: {fold_dir.name}/result.json has no accuracy; delete {fold_dir} and re-run "
                            "python -m train to train that fold again")
        fold = by_name.get(result.get("name")) if isinstance(result.get("name"), str) else None
        if fold is None:
            raise DataError(f"{run}: fold {result.get('name')!r} of {fold_dir.name} is not among the folds {data} gives "
                            f"({', '.join(by_name)}); give the --data the run was trained on")
        differ = changed_counts(result, fold)
        if differ:
            raise DataError(f"{run}: fold {fold.name!r} of {fold_dir.name} was trained on other clips "
                            f"({', '.join(f'{k} {a}' for k, (a, _) in differ.items())}; {data} gives "
                            f"{', '.join(f'{k} {b}' for k, (_, b) in differ.items())}); give the --data the run was trained on")
        done.append((fold_dir, fold, result))
    return done


def load_fold_model(run: Path, fold_dir: Path, fold: Fold, dataset: Dataset, data: Path):
    """(keras model, config.json) of one finished fold; DataError (one line) when its labels are not
    ``dataset``'s or the model file does not load."""
    meta = read_json(fold_dir / "config.json", str(run))
    broken = not isinstance(meta, dict) or not all(
        isinstance(meta.get(key), int) and meta[key] > 0 for key in ("sample_rate", "window_samples", "hop_samples"))
    if broken:
        raise DataError(f"{run}: fold_{fold.index}/config.json lacks a positive sample_rate, window_samples or "
                        f"hop_samples; delete {fold_dir} and re-run python -m train to train that fold again")
    if meta.get("labels") != list(dataset.labels):
        raise DataError(f"{run}: fold {fold.index} has labels {meta.get('labels')}, {data} has {list(dataset.labels)}")
    return load_keras(fold_dir / "model.keras", f"{run}: cannot load fold_{fold.index}/model.keras"), meta


def load_keras(path: Path, error: str):
    """The Keras model in ``path``; DataError ``"{error} ({exception type})"`` when it does not load."""
    from train.quiet import import_keras

    keras = import_keras()  # without TensorFlow's start-up banner on stderr
    try:
        return keras.models.load_model(str(path), safe_mode=True)
    except Exception as e:  # a truncated or foreign file: Keras raises several types
        raise DataError(f"{error} ({type(e).__name__})") from None


def finite_probs(probs: np.ndarray, where: str) -> np.ndarray:
    """``probs`` (clips, classes) as given; DataError naming ``where`` when a row is not finite (a
    diverged model, which would turn a student's weights or an average NaN)."""
    if not np.isfinite(probs).all():
        raise DataError(f"{where} gives non-finite probabilities "
                        f"on {int((~np.isfinite(probs).all(axis=1)).sum())} of {len(probs)} clips")
    return probs


def warn_if_rescored(run: Path, fold: Fold, result: dict, accuracy: float, clips: int, data: Path) -> None:
    """A warning on stderr when a fold scores other than its result.json says (by more than half a
    clip), with the likeliest reason: another backend or accelerator, or other data."""
    if abs(accuracy - float(result["accuracy"])) <= 0.5 / clips:
        return
    import keras

    where = result.get("trained_on") or {}  # train.__main__.trained_on: {} is TensorFlow on the CPU
    backend = where.get("keras_backend", "tensorflow")
    if backend != keras.backend.backend() or where.get("accelerator"):
        why = (f"it trained on {backend} ({where.get('accelerator') or 'CPU'}) and is scored here on "
               f"{keras.backend.backend()} (CPU): a clip near a decision boundary can flip")
    else:
        why = f"is {data} the data it was trained on?"
    print(f"warning: {run.name} fold {fold.index} scores {accuracy:.3f} here, {float(result['accuracy']):.3f} "
          f"in its result.json: {why}", file=sys.stderr)
