"""Parity numbers between an artifact and the Keras model (numeric only, no I/O).

All probability arrays are float32 (n_windows, n_classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def label_indices(labels, classes) -> np.ndarray:
    """Index of each window's label in ``classes``; -1 where unknown/None."""
    pos = {c: i for i, c in enumerate(classes)}
    return np.asarray([pos.get(label, -1) if label is not None else -1 for label in labels], dtype=np.int64)


def non_finite_rows(probs: np.ndarray) -> np.ndarray:
    """bool (n_windows,): which windows have at least one NaN or infinite probability."""
    probs = np.asarray(probs)
    return (~np.isfinite(probs)).reshape(len(probs), -1).any(axis=1) if len(probs) else np.zeros(0, bool)


def non_finite_windows(probs: np.ndarray) -> int:
    """Windows (rows) with at least one NaN or infinite probability."""
    return int(non_finite_rows(probs).sum())


def accuracy(probs: np.ndarray, truth: np.ndarray) -> float | None:
    """Top-1 accuracy over windows with a known label (truth >= 0); None if none."""
    known = truth >= 0
    if not known.any():
        return None
    return float((probs[known].argmax(axis=1) == truth[known]).mean())


def compare(reference: np.ndarray, probs: np.ndarray, truth: np.ndarray) -> dict:
    """Top-1 agreement, largest absolute probability difference, accuracy and how many
    windows have a NaN/inf output. argmax of an all-NaN row is 0 for both arrays, so a
    model that outputs only NaN would otherwise "agree" 100 %: ``judge`` fails on the count."""
    return {
        "windows": int(len(probs)),
        "non_finite_windows": non_finite_windows(probs),
        "top1_agreement": float((reference.argmax(axis=1) == probs.argmax(axis=1)).mean()),
        "max_prob_diff": float(np.abs(reference - probs).max()),
        "mean_prob_diff": float(np.abs(reference - probs).mean()),
        "accuracy": accuracy(probs, truth),
    }


@dataclass(frozen=True)
class Verdict:
    passed: bool | None  # None: could not be judged (no labels for an int8 artifact)
    reason: str


def judge(precision: str, stats: dict, keras_accuracy: float | None,
          min_agreement: float, max_drop: float) -> Verdict:
    """Float artifacts: top-1 agreement >= ``min_agreement``.
    Int8 artifacts: accuracy >= Keras accuracy - ``max_drop``.
    Any window with a NaN/inf output fails, whatever the agreement says."""
    bad = stats.get("non_finite_windows", 0)
    if bad:
        return Verdict(False, f"NaN/inf outputs on {bad} of {stats['windows']} windows")
    if precision == "float":
        ok = stats["top1_agreement"] >= min_agreement
        return Verdict(ok, f"top-1 agreement {stats['top1_agreement']:.2%} {'>=' if ok else '<'} {min_agreement:.1%}")
    if keras_accuracy is None or stats["accuracy"] is None:
        return Verdict(None, "no labelled windows: accuracy loss not judged")
    drop = keras_accuracy - stats["accuracy"]
    ok = drop <= max_drop + 1e-9
    return Verdict(ok, f"accuracy drop {drop * 100:+.2f} points {'<=' if ok else '>'} {max_drop * 100:.1f}")


if __name__ == "__main__":  # a library module: `python -m` would import it, do nothing and exit 0
    raise SystemExit("error: export.parity is a library module, not a command (see python -m export --help)")
