"""Confusion-matrix, per-fold recall and training-curve PNGs (matplotlib, Agg backend; written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from runtime.files import atomic_path  # noqa: E402


def _save(fig, path: Path) -> None:
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)


def confusion_png(cm: np.ndarray, labels: Sequence[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix with counts in the cells."""
    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1.0 + 0.5 * n))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7, color="white" if norm[i, j] > 0.5 else "black")
    _save(fig, path)


def curves_png(histories: Sequence[tuple[str, dict]], path: Path, title: str) -> None:
    """Loss and accuracy per epoch (training dashed, validation solid), one colour per fold."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, (name, h) in enumerate(histories):
        color = f"C{k % 10}"
        for ax, key in ((a, "loss"), (b, "accuracy")):
            if key in h:
                ax.plot(range(1, len(h[key]) + 1), h[key], "--", color=color, alpha=0.6)
            if f"val_{key}" in h:
                ax.plot(range(1, len(h[f"val_{key}"]) + 1), h[f"val_{key}"], "-", color=color, label=name)
    a.set_title("loss (dashed: train, solid: validation)", fontsize=9)
    b.set_title("window accuracy", fontsize=9)
    for ax in (a, b):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if histories:
        b.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def accuracy_png(tables: Sequence[tuple[str, Sequence[dict]]], path: Path, xlabel: str) -> None:
    """Our accuracy beside the papers', one panel per table.

    tables: (title, rows); each row has ``model`` (or a ``label`` to show instead), ``accuracy`` and
    ``accuracy_std`` (fractions), ``paper_value`` (None, or [mean %, std % or None]) and optionally
    ``seed_mean`` (a fraction, or None). Bars: ours, mean ± std over folds; black diamonds: the
    paper's number for the same model and task (its std as a line where published); orange ticks:
    the mean over seeds. ``xlabel`` says what the bars are.
    """
    heights = [0.8 + 0.28 * max(len(rows), 1) for _, rows in tables]
    # sharex + constrained layout: one x axis at the bottom, panel titles clear of the panel above
    fig, axes = plt.subplots(len(tables), 1, figsize=(11, sum(heights) + 0.6), squeeze=False, sharex=True,
                             gridspec_kw={"height_ratios": heights}, layout="constrained")
    for ax, (title, rows) in zip(axes[:, 0], tables):
        y = np.arange(len(rows))[::-1]
        ours = np.array([100 * r["accuracy"] for r in rows])
        ax.barh(y, ours, xerr=[100 * r["accuracy_std"] for r in rows], color="C0", alpha=0.75,
                error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "0.45"})
        for yi, r in zip(y, rows):
            if r.get("paper_value"):
                mean, std = r["paper_value"]
                ax.errorbar(mean, yi - 0.2, xerr=std or None, fmt="D", color="black", ms=4, elinewidth=0.8, capsize=2)
            if r.get("seed_mean") is not None:
                ax.plot([100 * r["seed_mean"]] * 2, [yi - 0.4, yi + 0.4], color="C1", lw=2)
            ax.text(1, yi, f"{100 * r['accuracy']:.1f}", va="center", fontsize=7, color="white")
        ax.set_yticks(y, [r.get("label", r["model"]) for r in rows], fontsize=8)
        ax.set_xlim(0, 100)
        ax.set_title(title, fontsize=8, loc="left")
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel(xlabel, fontsize=8, wrap=True)
    _save(fig, path)


def recall_png(recalls: np.ndarray, fold_names: Sequence[str], labels: Sequence[str], path: Path, title: str) -> None:
    """Folds x classes heat map of recall (float (F, C), NaN where a fold has no clips of a class):
    where a mean accuracy hides one speaker's or one fold's failure on one class."""
    recalls = np.asarray(recalls, dtype=np.float64)
    f, n = recalls.shape
    fig, ax = plt.subplots(figsize=(1.6 + 0.55 * n, 1.0 + 0.45 * f))
    ax.imshow(np.ma.masked_invalid(recalls), cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(f), fold_names, fontsize=8)
    ax.set_xlabel("true class")
    ax.set_title(title, fontsize=9)
    for i in range(f):
        for j in range(n):
            v = recalls[i, j]
            if not np.isnan(v):
                ax.text(j, i, f"{v:.2f}".lstrip("0") if 0 < v < 1 else f"{v:.0f}", ha="center", va="center", fontsize=7)
    _save(fig, path)
