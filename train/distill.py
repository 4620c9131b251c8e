"""Distillation from finished runs: their fold models label this run's training clips.

A teacher is another run folder written by ``python -m train`` on the same dataset (typically a
2D model, which reads EMO-DB better than the 1D models but is too large or slow for the target).
For fold K, the teacher's ``fold_K/model.keras`` gives clip-level probabilities (the mean over its
own windows, at its own rate) for the student's training clips; with several teachers they are
averaged. The student then fits, with the usual cross-entropy, the per-clip targets::

    (1 - weight) * one_hot(label) + weight * soften(p_teacher, temperature)

``soften`` raises the probabilities to ``1 / temperature`` and renormalises: the same as dividing
the teacher's logits by the temperature, as in Hinton et al. (2015). The student's own output is not
softened (its softmax is part of the exported model), so there is no ``T^2`` factor; this is
distillation with soft labels. Validation keeps the true labels, so checkpoint selection is unchanged.

A teacher must not have seen the student's test clips: for every fold, its training and
validation clips (rebuilt from its run.json with :func:`train.protocols.make_folds`) must be
disjoint from the student's test clips. A teacher of another ``--seed`` (under ``kfold`` the seed
redraws the speaker groups) or protocol fails that check with a one-line error before any training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from train.data import DataError, Dataset, read_json
from train.finished import finite_probs, load_keras, run_folds
from train.protocols import Fold


def _check_temperature(temperature: float) -> None:
    if not 0 < temperature < np.inf:
        raise ValueError(f"temperature must be positive, not {temperature}")


def check_settings(weight: float, temperature: float) -> None:
    """Raise ValueError (one line) for a teacher weight outside [0, 1] or a temperature that is
    not a positive finite number."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"teacher weight must be in [0, 1], not {weight}")
    _check_temperature(temperature)


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """float (n, C) probabilities -> float32 (n, C), each row ``p ** (1 / T)`` renormalised.

    ``temperature`` > 1 flattens, 1 leaves them as they are; equal to a softmax of logits / T.
    """
    _check_temperature(temperature)
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, None)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def soft_targets(labels: np.ndarray, teacher_probs: np.ndarray, weight: float, temperature: float) -> np.ndarray:
    """int (n,) labels and float (n, C) teacher probabilities -> float32 (n, C) training targets.

    ``weight`` 0 gives the one-hot labels, 1 the softened teacher alone; each row sums to 1.
    """
    check_settings(weight, temperature)
    teacher_probs = np.asarray(teacher_probs)
    one_hot = np.eye(teacher_probs.shape[1], dtype=np.float32)[np.asarray(labels, dtype=np.int64)]
    return ((1.0 - weight) * one_hot + weight * soften(teacher_probs, temperature)).astype(np.float32)


def load_teachers(paths: Sequence[str], dataset: Dataset, protocol: str, folds: Sequence[Fold],
                  trained: Sequence[Fold], final: bool = False) -> list[Path]:
    """Check each teacher run against the student's folds; raise :class:`DataError` (one line) if
    it is missing, on another dataset or label set, has another number of folds, has not finished
    one of the folds the student trains (``trained``), or trained or validated on any of the
    student's test clips of that fold. With ``final`` (the
    student's ``--final``) each teacher needs its own ``final/`` model, which labels all clips.
    Returns the teachers' run folders."""
    teachers = []
    for raw in paths:
        path = Path(raw)
        run_file = path / "run.json"
        if not run_file.is_file():
            raise DataError(f"teacher {path}: no run.json; give a run folder written by python -m train")
        run = read_json(run_file, f"teacher {path}")
        t_folds = run_folds(run, dataset)
        if len(t_folds) != len(folds):
            raise DataError(f"teacher {path} has {len(t_folds)} folds, this run {len(folds)} (--protocol {protocol})")
        for fold in trained:
            t_fold = t_folds[fold.index]
            config_file, done = path / f"fold_{fold.index}" / "config.json", path / f"fold_{fold.index}" / "result.json"
            if not (config_file.is_file() and done.is_file()):
                raise DataError(f"teacher {path} has not finished fold {fold.index} ({fold.name})")
            meta = read_json(config_file, f"teacher {path}")
            if meta.get("dataset") != dataset.name:
                raise DataError(f"teacher {path} was trained on {meta.get('dataset')}, not {dataset.name}")
            labels = meta.get("labels")
            if labels != list(dataset.labels):
                raise DataError(f"teacher {path} has labels {labels}, this dataset {list(dataset.labels)}")
            seen = (set(t_fold.train) | set(t_fold.val)) & set(fold.test)
            if seen:
                raise DataError(f"teacher {path} trained on {len(seen)} test clip(s) of fold {fold.index} ({fold.name}): "
                                f"use a teacher trained with this run's --protocol, --seed and --k")
        if final and not (path / "final" / "model.keras").is_file():
            raise DataError(f"teacher {path} has no final model for --final: run it again with --final first")
        teachers.append(path)
    return teachers


def teacher_probs(teachers: Sequence[Path], part: str, clip_indices: Sequence[int], audio_at) -> np.ndarray:
    """Mean clip-level probabilities, float32 (len(clip_indices), C), of every teacher's model in
    its subfolder ``part`` (``fold_K`` for fold K, ``final`` for the student's ``--final``).

    ``audio_at(rate, clip_indices)`` returns those clips decoded at ``rate`` (a teacher may run at
    another rate than the student).
    """
    from train.fit import predict_clips

    probs = []
    for path in teachers:
        meta = read_json(path / part / "config.json", f"teacher {path}")
        model = load_keras(path / part / "model.keras", f"teacher {path}: cannot load {part}/model.keras")
        p = predict_clips(model, audio_at(int(meta["sample_rate"]), clip_indices),
                          int(meta["window_samples"]), int(meta["hop_samples"]))
        probs.append(finite_probs(p, f"teacher {path}: {part}/model.keras"))
    return np.mean(probs, axis=0).astype(np.float32)
