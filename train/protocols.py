"""Evaluation protocols: how a dataset's clips are split into train / validation / test folds.

* ``loso``     leave-one-speaker-out: each speaker is the test set once (1D paper, FSDD).
* ``official`` the dataset's own folds: each fold is the test set once (UrbanSound8K, ESC-50).
* ``kfold``    speaker-independent k-fold: speakers (or, without speakers, source
               recordings) are dealt into k balanced groups (1D paper, AESDD 3-fold).
* ``split``    one fixed, seeded train/validation/test split, 80/10/10 by default, that keeps
               each speaker / source recording on one side.
* ``random-split`` the same split drawn over clips, ignoring speakers and recordings: what a
               plain random 80/10/10 split does (the 2D paper's protocol). Slices of one recording
               land in both train and test, so it overstates accuracy; it exists to measure by
               how much, and is the one protocol exempt from the source-recording check.

Guarantees (asserted by :func:`check_fold` for every fold built here):
the test set shares no speaker and no source recording with train or validation,
and train and validation share no source recording. Validation always comes from
the training side (never the test speaker or fold); it is what checkpoint selection
watches. With ``val_by="speaker"`` (loso, official, kfold) validation also shares no
speaker with train: the checkpoint is then picked on unseen speakers, as the test
measures, at the cost of one training speaker or more. Pure Python + numpy;
deterministic for a given seed (and the test sets do not depend on ``val_by``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from train.data import Clip, DataError, Dataset

PROTOCOLS = ("loso", "official", "kfold", "split", "random-split")


@dataclass(frozen=True)
class Fold:
    """One train/validation/test split, as indices into ``Dataset.clips``."""

    index: int
    name: str  # e.g. "speaker=george", "fold=1", "group 2/3", "split 80/10/10"
    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]


def changed_counts(result: dict, fold: Fold) -> dict[str, tuple[int, int]]:
    """{key: (recorded, now)} of the n_train/n_val/n_test counts a fold's ``result.json`` recorded that
    this ``fold`` no longer gives: the data changed since it trained (older files lack the counts)."""
    now = {"n_train": len(fold.train), "n_val": len(fold.val), "n_test": len(fold.test)}
    return {k: (result[k], v) for k, v in now.items() if k in result and result[k] != v}


def _group(clip: Clip) -> str:
    """The unit that must not be split: the speaker when known, else the source recording."""
    return clip.speaker if clip.speaker is not None else clip.source


def _holdout(clips: Sequence[Clip], indices: Sequence[int], fraction: float, rng: np.random.Generator,
             key=lambda c: c.source) -> tuple[list[int], list[int]]:
    """Split ``indices`` into (kept, held out ~``fraction``) without splitting a ``key`` group.

    Groups are visited in seeded random order and held out while every label stays
    within its quota (``fraction`` of its clips, rounded up), so the held-out part is
    roughly stratified; at least one group is always held out.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i in indices:
        groups[key(clips[i])].append(i)
    names = sorted(groups)
    rng.shuffle(names)
    totals = Counter(clips[i].label for i in indices)
    quota = {label: math.ceil(fraction * n) for label, n in totals.items()}
    held: Counter = Counter()
    out: list[int] = []
    for name in names:
        counts = Counter(clips[i].label for i in groups[name])
        if not out or all(held[label] + n <= quota[label] for label, n in counts.items()):
            held.update(counts)
            out.extend(groups[name])
    held_set = set(out)
    if len(held_set) == len(indices):
        raise DataError(f"cannot hold out {fraction:.0%} for validation: only {len(groups)} group(s) available")
    return sorted(i for i in indices if i not in held_set), sorted(out)


# What the validation split of loso, official and kfold folds holds out whole, and the key that keeps it whole:
# source recordings (default; validation speakers also train) or speakers (unseen in training, like the test's).
_VAL_KEYS = {"recording": lambda c: c.source, "speaker": lambda c: c.speaker}
VAL_BY = tuple(_VAL_KEYS)


def _check_val_by(dataset: Dataset, val_by: str) -> None:
    """DataError (one line) if ``val_by`` is unknown or the dataset has no speakers to group by."""
    if val_by not in VAL_BY:
        raise DataError(f"unknown validation grouping {val_by!r}; choose one of: {', '.join(VAL_BY)}")
    if val_by == "speaker" and not dataset.has_speakers:
        raise DataError(f"dataset {dataset.name!r} has no speaker information: --val-by speaker needs speakers")


def _fold(clips, index, name, train_pool, test, val_fraction, rng, val_by: str = "recording") -> Fold:
    train, val = _holdout(clips, train_pool, val_fraction, rng, key=_VAL_KEYS[val_by])
    fold = Fold(index, name, tuple(train), tuple(val), tuple(sorted(test)))
    check_fold(clips, fold, val_by=val_by)
    return fold


def leave_one_speaker_out(dataset: Dataset, val_fraction: float = 0.1, seed: int = 0, val_by: str = "recording") -> list[Fold]:
    if not dataset.has_speakers:
        raise DataError(f"dataset {dataset.name!r} has no speaker information: use --protocol official, kfold or split")
    clips, rng = dataset.clips, np.random.default_rng(seed)
    speakers = sorted({c.speaker for c in clips})
    # one test speaker, and with val_by="speaker" one validation speaker, leave at least one to train on
    need = 3 + (val_by == "speaker")
    if len(speakers) < need:
        raise DataError(f"leave-one-speaker-out{' with --val-by speaker' if need > 3 else ''} needs at least {need} "
                        f"speakers, {dataset.name!r} has {len(speakers)}")
    _check_val_by(dataset, val_by)
    return _each_value_out(clips, "speaker", speakers, val_fraction, rng, val_by)


def official_folds(dataset: Dataset, val_fraction: float = 0.1, seed: int = 0, val_by: str = "recording") -> list[Fold]:
    if not dataset.has_folds:
        raise DataError(f"dataset {dataset.name!r} has no official folds: use --protocol kfold or split")
    clips, rng = dataset.clips, np.random.default_rng(seed)
    numbers = sorted({c.fold for c in clips})
    if len(numbers) < 2:
        raise DataError(f"dataset {dataset.name!r} has only fold {numbers[0]}: need at least 2 folds")
    _check_val_by(dataset, val_by)
    return _each_value_out(clips, "fold", numbers, val_fraction, rng, val_by)


def _each_value_out(clips, attr: str, values: list, val_fraction: float, rng, val_by: str) -> list[Fold]:
    """One fold per value of ``attr`` (speaker, official fold): its clips are the test set."""
    folds = []
    for k, v in enumerate(values):
        test = [i for i, c in enumerate(clips) if getattr(c, attr) == v]
        pool = [i for i, c in enumerate(clips) if getattr(c, attr) != v]
        folds.append(_fold(clips, k, f"{attr}={v}", pool, test, val_fraction, rng, val_by))
    return folds


def group_kfold(dataset: Dataset, k: int = 3, val_fraction: float = 0.1, seed: int = 0, val_by: str = "recording") -> list[Fold]:
    """Speakers (or source recordings, when the dataset has no speakers) dealt into ``k``
    groups of about equal clip count: largest first, each to the currently smallest group."""
    clips, rng = dataset.clips, np.random.default_rng(seed)
    _check_val_by(dataset, val_by)
    sizes = Counter(_group(c) for c in clips)
    if len(sizes) < k or k < 2:
        raise DataError(f"{k}-fold needs k >= 2 and at least k speakers/groups; {dataset.name!r} has {len(sizes)}")
    order = sorted(sizes)
    rng.shuffle(order)  # seeded tie-breaking
    order.sort(key=lambda g: -sizes[g])
    bins: list[list[str]] = [[] for _ in range(k)]
    load = [0] * k
    for g in order:
        j = int(np.argmin(load))
        bins[j].append(g)
        load[j] += sizes[g]
    folds = []
    for j, members in enumerate(bins):
        member_set = set(members)
        test = [i for i, c in enumerate(clips) if _group(c) in member_set]
        pool = [i for i, c in enumerate(clips) if _group(c) not in member_set]
        folds.append(_fold(clips, j, f"group {j + 1}/{k}: {','.join(sorted(members)[:6])}", pool, test, val_fraction, rng, val_by))
    return folds


# How far (fraction of the clips) a split may come out from what was asked before its name says so.
SPLIT_SLACK = 0.05


def fixed_split(dataset: Dataset, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0,
                by_clip: bool = False) -> list[Fold]:
    """One seeded split (train, val, test fractions), never splitting a speaker/source group;
    ``by_clip``: each clip is its own group (a plain random split; leaks recordings, on purpose)."""
    if len(fractions) != 3 or min(fractions) <= 0 or not math.isclose(sum(fractions), 1.0):
        raise DataError(f"split fractions must be three positive numbers summing to 1, got {fractions}")
    clips, rng = dataset.clips, np.random.default_rng(seed)
    everything = list(range(len(clips)))
    key = (lambda c: str(c.path)) if by_clip else _group
    rest, test = _holdout(clips, everything, fractions[2], rng, key=key)
    train, val = _holdout(clips, rest, fractions[1] / (fractions[0] + fractions[1]), rng, key=key)
    name = ("random split " if by_clip else "split ") + "/".join(f"{round(f * 100)}" for f in fractions)
    taken = [len(part) / len(clips) for part in (train, val, test)]
    if max(abs(t - f) for t, f in zip(taken, fractions)) > SPLIT_SLACK:
        # Whole groups only: FSDD's five speakers cannot make 80/10/10, and came out 60/20/20 under that name.
        name += f" (taken: {'/'.join(f'{round(t * 100)}' for t in taken)} of the clips, in whole speaker or source groups)"
    fold = Fold(0, name, tuple(train), tuple(val), tuple(test))
    check_fold(clips, fold, groups=not by_clip)
    return [fold]


def make_folds(dataset: Dataset, protocol: str, seed: int = 0, k: int = 3, val_fraction: float = 0.1,
               fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), val_by: str = "recording") -> list[Fold]:
    """Folds of ``dataset`` under ``protocol`` (one of :data:`PROTOCOLS`); ``val_by`` (:data:`VAL_BY`) applies
    to loso, official and kfold: the split protocols draw validation their own way."""
    if protocol == "loso":
        return leave_one_speaker_out(dataset, val_fraction, seed, val_by)
    if protocol == "official":
        return official_folds(dataset, val_fraction, seed, val_by)
    if protocol == "kfold":
        return group_kfold(dataset, k, val_fraction, seed, val_by)
    if val_by != "recording" and protocol in ("split", "random-split"):
        raise DataError(f"--val-by {val_by} applies to loso, official and kfold; --protocol {protocol} draws its "
                        "validation share its own way (split: whole speakers already; random-split: single clips)")
    if protocol == "split":
        return fixed_split(dataset, fractions, seed)
    if protocol == "random-split":
        return fixed_split(dataset, fractions, seed, by_clip=True)
    raise DataError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")


def check_fold(clips: Sequence[Clip], fold: Fold, groups: bool = True, val_by: str = "recording") -> None:
    """Raise :class:`DataError` if ``fold`` leaks: overlapping indices, a speaker or source
    recording in both test and train/val, a source recording (``val_by="speaker"``: also a
    speaker) in both train and val (``groups=False``, for ``random-split`` only: just the first check)."""
    train, val, test = set(fold.train), set(fold.val), set(fold.test)
    if not train or not val or not test:
        raise DataError(f"fold {fold.name}: empty part (train {len(train)}, val {len(val)}, test {len(test)})")
    if train & val or train & test or val & test:
        raise DataError(f"fold {fold.name}: a clip is in two parts")
    if not groups:
        return

    def ids(part, attr):
        return {getattr(clips[i], attr) for i in part} - {None}

    for attr in ("speaker", "source"):
        shared = ids(test, attr) & (ids(train, attr) | ids(val, attr))
        if shared:
            raise DataError(f"fold {fold.name}: {attr}(s) in both test and training: {sorted(shared)[:5]}")
    shared = ids(train, "source") & ids(val, "source")
    if shared:
        raise DataError(f"fold {fold.name}: source recording(s) in both train and validation: {sorted(shared)[:5]}")
    shared = ids(train, "speaker") & ids(val, "speaker") if val_by == "speaker" else set()
    if shared:
        raise DataError(f"fold {fold.name}: speaker(s) in both train and validation: {sorted(shared)[:5]}")
