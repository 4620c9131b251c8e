"""train.metrics: scores, per-class recall and the weakest (fold, class) cells, on hand-made confusions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from train.metrics import class_recall, confusion_matrix, scores, weakest_cells


def test_confusion_and_macro_scores():
    cm = confusion_matrix(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 1]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [0, 1, 0]]
    s = scores(cm)
    assert s["accuracy"] == pytest.approx(3 / 5)
    assert s["recall"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert s["precision"] == pytest.approx((1 + 2 / 4 + 0) / 3)  # class 2 never predicted: precision 0


def test_a_class_predicted_but_absent_from_the_truth_counts_in_the_macro_averages():
    """It was left out: [0, 0, 1, 1] taken for [0, 2, 1, 1] scored precision 1.0 and F1 0.833; scikit-learn's
    default (the classes in the truth or the predictions) gives 0.667 and 0.556."""
    s = scores(confusion_matrix(np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1]), 4))  # class 3: in neither
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(1.5 / 3)
    assert s["f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_class_recall_leaves_absent_classes_undefined():
    recall = class_recall(np.array([[3, 1, 0], [0, 0, 0], [2, 0, 2]]))
    assert recall[0] == 0.75 and math.isnan(recall[1]) and recall[2] == 0.5


def test_weakest_cells_name_the_fold_the_class_and_what_it_was_taken_for():
    labels = ["one", "nine", "six"]
    speaker_a = np.array([[10, 0, 0], [0, 9, 1], [0, 0, 10]])
    speaker_b = np.array([[10, 0, 0], [9, 1, 0], [0, 4, 6]])  # b's "nine" heard as "one"
    cells = weakest_cells([speaker_a, speaker_b], ["a", "b"], labels, n=3)
    assert cells[0] == {"fold": "b", "label": "nine", "recall": 0.1, "clips": 10, "taken_for": "one"}
    assert [(c["fold"], c["label"]) for c in cells[1:]] == [("b", "six"), ("a", "nine")]
    assert weakest_cells([np.eye(2, dtype=int) * 5], ["a"], ["x", "y"])[0]["taken_for"] is None  # nothing wrong
    assert len(weakest_cells([speaker_a], ["a"], labels, n=10)) == 3
