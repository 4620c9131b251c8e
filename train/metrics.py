"""Classification scores from labels and predictions (numpy only)."""

from __future__ import annotations

import numpy as np

SCORES = ("accuracy", "precision", "recall", "f1")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 (num_classes, num_classes): rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def scores(cm: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-averaged precision, recall and F1 from a confusion matrix.

    The macro averages run over the classes in the truth or the predictions (scikit-learn's
    default): a class never predicted has precision 0, and one predicted but absent from the
    truth has recall 0 and counts too (wrong answers into it must cost something). Classes in
    neither are left out.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    present = (actual > 0) | (predicted > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {
        "accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "precision": float(precision[present].mean()),
        "recall": float(recall[present].mean()),
        "f1": float(f1[present].mean()),
    }


def class_recall(cm: np.ndarray) -> np.ndarray:
    """float64 (C,): each true class's share classified right; NaN for a class with no clips."""
    cm = np.asarray(cm, dtype=np.float64)
    actual = cm.sum(axis=1)
    return np.divide(np.diag(cm), actual, out=np.full(len(cm), np.nan), where=actual > 0)


def weakest_cells(confusions, fold_names, labels, n: int = 5) -> list[dict]:
    """The ``n`` (fold, class) cells with the lowest recall, lowest first, each with the class its
    clips were most often taken for. On leave-one-speaker-out data a few such cells (one speaker's
    way of saying one word) can hold a third of all errors, which a mean accuracy does not show.

    confusions: one (C, C) count matrix per fold (rows true, columns predicted)."""
    cells = []
    for cm, fold in zip(confusions, fold_names):
        cm = np.asarray(cm)
        for c, r in enumerate(class_recall(cm)):
            if np.isnan(r):
                continue
            wrong = cm[c].copy()
            wrong[c] = 0
            cells.append({"fold": fold, "label": str(labels[c]), "recall": round(float(r), 4), "clips": int(cm[c].sum()),
                          "taken_for": str(labels[int(wrong.argmax())]) if wrong.any() else None})
    return sorted(cells, key=lambda d: (d["recall"], -d["clips"]))[:n]
