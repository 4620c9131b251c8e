"""Epoch-level resume: after every epoch, everything the next epoch depends on, in one file.

A fold of a long recipe (SincNet, 100 epochs) takes over an hour on a laptop core; a run killed
mid-fold (a closed lid, a session limit, an out-of-memory kill) would otherwise start that fold
again from epoch 1. ``python -m train`` keeps ``fold_K/resume.npz`` and continues from the last
finished epoch.

What is saved (float32/int arrays in an ``.npz``, written atomically, plus a JSON header in it):

* every model variable, seed-generator states included (``model.variables``, not ``weights``),
  so dropout draws the masks it would have drawn;
* every optimiser variable (step count, Adam's moments): the learning-rate schedule and the
  moments go on where they were;
* the callbacks' memory: the best monitored value so far (the checkpoint rule), early stopping's
  wait and best, the weight average and its step count;
* the history so far, the training seconds so far (wall clock, and the process's CPU time) and
  whether training already stopped.

The batch order and augmentation draw from ``(seed, epoch, batch)`` (``train.fit.WindowBatches``),
so they need no state. With all of that the resumed fold computes what the uninterrupted one
would have: ``tests/test_training.py`` checks the weights and history are equal.

An epoch killed before its state was written is trained again from the state before it; if its
checkpoint was already written, the re-run writes the same weights again.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.files import atomic_path

FORMAT = 1


@dataclass
class EpochState:
    """What training has done so far; ``epoch`` epochs are finished.

    fingerprint: what the fold trains (model and fit settings, data sizes): a state from other
        settings is never resumed.
    model, optimizer: the values of ``model.variables`` and ``model.optimizer.variables``, in order.
    average: the weight average's values (``WeightAverage``), empty without one.
    seconds, cpu_seconds: training time so far, wall clock and this process's CPU time (all its
        threads; ``time.process_time``). The CPU time hardly changes when other jobs share the
        machine, so it compares runs that the wall clock cannot. None for a state written before the
        field, whose earlier epochs' CPU time is unknown.
    kept: the float weights the checkpoint file holds (the best epoch's, averaged if averaging), so
        a checkpoint written by an epoch that was killed before its state can be put back.
    counters: small numbers by name (``best``, ``stop_wait``, ``stop_best``, ``stop_best_epoch``,
        ``average_steps``, ``kept_stamp``), restored into the callbacks that own them; None where there
        is no value yet (no best so far). NaN and infinity are kept as they are (Python's JSON
        writes and reads them), since early stopping treats a NaN best unlike no best.
    """

    fingerprint: str
    epoch: int = 0
    done: bool = False
    seconds: float = 0.0
    cpu_seconds: float | None = 0.0
    history: dict[str, list[float]] = field(default_factory=dict)
    resumed_at: list[int] = field(default_factory=list)
    counters: dict[str, float | list | None] = field(default_factory=dict)
    model: list[np.ndarray] = field(default_factory=list)
    optimizer: list[np.ndarray] = field(default_factory=list)
    average: list[np.ndarray] = field(default_factory=list)
    kept: list[np.ndarray] = field(default_factory=list)


_GROUPS = ("model", "optimizer", "average", "kept")


def save(state: EpochState, path: Path) -> None:
    """Write ``state`` to ``path`` (an ``.npz``) through a temporary name and a rename."""
    header = {"format": FORMAT, "fingerprint": state.fingerprint, "epoch": state.epoch, "done": state.done,
              "seconds": state.seconds, "cpu_seconds": state.cpu_seconds, "history": state.history, "resumed_at": state.resumed_at,
              "counters": state.counters,
              "sizes": {g: len(getattr(state, g)) for g in _GROUPS}}
    arrays = {f"{g}_{i}": a for g in _GROUPS for i, a in enumerate(getattr(state, g))}
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, header=np.array(json.dumps(header, default=float)), **arrays)  # default: numpy scalars


# What reading a truncated, empty or foreign file raises: such a state is ignored, not worth a failed run.
_UNREADABLE = (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile)


def header(path: Path) -> dict | None:
    """The JSON header of the state at ``path`` (``epoch``, ``done``, ``fingerprint``, ...), or None
    if there is no readable one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            h = json.loads(str(z["header"]))
        return h if isinstance(h, dict) else None
    except _UNREADABLE:
        return None


def load(path: Path, fingerprint: str) -> EpochState | None:
    """The state at ``path`` if it exists, is readable and belongs to ``fingerprint``; else None
    (the fold then starts from epoch 1, which is always correct, only slower)."""
    if not Path(path).is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            if header.get("format") != FORMAT or header.get("fingerprint") != fingerprint:
                return None
            groups = {g: [z[f"{g}_{i}"] for i in range(int(header["sizes"][g]))] for g in _GROUPS}
            cpu = header.get("cpu_seconds")  # absent from states written before the field
            return EpochState(fingerprint, int(header["epoch"]), bool(header["done"]), float(header["seconds"]),
                              None if cpu is None else float(cpu), dict(header["history"]), list(header["resumed_at"]),
                              dict(header["counters"]), **groups)
    except _UNREADABLE:
        return None
