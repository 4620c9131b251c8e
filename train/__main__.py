"""``python -m train``: train a zoo model on a dataset under a protocol, every fold, with artifacts.

Writes to ``--out`` (e.g. ``runs/NAME``)::

    run.json                 the training configuration (a resumed run must match it)
    fold_K/model.keras       best-validation-loss checkpoint of fold K
    fold_K/config.json       ModelConfig + labels + rate/window, to rebuild export metadata
    fold_K/result.json       scores, confusion matrix, history, training seconds (wall and CPU) and
                             the cores it could use; its presence marks the fold done
    fold_K/resume.npz        while fold K trains: its state after the last finished epoch
    fold_K/curves.png, fold_K/confusion.png
    summary.json             per fold and mean/std: accuracy, macro precision/recall/F1, epochs, seconds
                             (wall; and CPU when every fold recorded it)
    confusion.png, curves.png  over all finished folds
    final/                   with --final: one model trained on all the data (for export)

An interrupted run resumes: finished folds (with result.json) are not trained again, and the
fold that was training goes on from its last finished epoch (``train.epoch_state``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import signal
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.cli import ArgumentParser
from runtime.files import remove_partials, write_atomic
from train.augment import Augment
from train.data import LOADERS, AudioCache, DataError, decode, load_dataset
from train.protocols import PROTOCOLS, VAL_BY, Fold, changed_counts, make_folds

# Largest --seed: fold K seeds with seed + K, and numpy/TensorFlow refuse seeds from 2**32 on.
MAX_SEED = 2**32 - 1 - 1000

# A fold's state after every epoch (train.epoch_state), in the fold's folder while it trains
RESUME = "resume.npz"

# Fields of TrainConfig that do not change what a fold computes (so a resumed run may differ in them).
NOT_IDENTITY = ("out", "data", "max_folds", "final", "progress", "cache_dir")
SUMMARY_KEYS = ("accuracy", "precision", "recall", "f1", "epochs", "best_epoch", "train_seconds")
# Summarised only when every fold has one: folds trained before the field (or resumed from a state
# written before it) have none.
OPTIONAL_SUMMARY_KEYS = ("train_cpu_seconds",)


@dataclass(frozen=True)
class TrainConfig:
    """One ``python -m train`` invocation (see ``--help`` for each field)."""

    model: str
    dataset: str
    data: str
    protocol: str
    out: str
    sample_rate: int | None = None
    window: float | None = None  # seconds; None = the paper's window for the model's family
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    augment: bool = True
    k: int = 3
    val_fraction: float = 0.1
    val_by: str = "recording"  # what validation holds out whole (train.protocols.VAL_BY; kept out of run.json by default)
    patience: int | None = None
    monitor: str = "val_loss"
    schedule: str = "constant"
    label_smoothing: float = 0.0
    mixup: float = 0.0
    ema: float = 0.0
    speed: tuple[float, float] = (1.0, 1.0)
    eq_db: float = 0.0
    masks: int = 0
    sinc_units: str = "sample-rate"  # sincnet only (kept out of other models' run.json)
    head_segments: int = 1  # 1D only; 1 = the papers' global average pooling (kept out of run.json)
    teacher: tuple[str, ...] = ()  # run folders distilled from (train.distill); the two below only with one
    teacher_weight: float = 0.5
    teacher_temperature: float = 2.0
    max_folds: int | None = None
    final: bool = False
    cache_dir: str | None = None
    progress: bool = True

    def identity(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in NOT_IDENTITY}


def _write_json(path: Path, data) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def machine(results: list[dict] = ()) -> dict:
    """The machine writing the summary, and the Keras backend and accelerator its folds trained on:
    from the folds' own ``trained_on`` (a run resumed or re-summarised elsewhere keeps where it
    trained), else, for folds from before that field, this process's."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    where = [r["trained_on"] for r in results if "trained_on" in r]
    if len(where) < len(results) or not results:
        where = [trained_on()]
    backends = sorted({w.get("keras_backend", "tensorflow") for w in where})
    if backends != ["tensorflow"]:  # TensorFlow on the CPU records nothing: rows from before keep their identity
        accelerators = sorted({w.get("accelerator") or "CPU" for w in where})
        info.update(keras_backend=" + ".join(backends),
                    accelerator=None if accelerators == ["CPU"] else " + ".join(accelerators))
    return info


def trained_on() -> dict:
    """Where this process trains: {} for TensorFlow (tensorflow-cpu: the CPU), else the Keras backend
    and the accelerator it uses (None on the CPU): a GPU run's times are not a CPU run's. Stored in
    each fold's result.json."""
    from train.quiet import import_keras

    keras = import_keras()  # without TensorFlow's start-up banner on stderr

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return {}
    accelerator = None
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            accelerator = None if device.platform == "cpu" else device.device_kind
        elif backend == "torch":
            import torch

            accelerator = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # a broken accelerator stack still trains (on the CPU): record what is known
        pass
    return {"keras_backend": backend, "accelerator": accelerator}


def _identity(cfg: TrainConfig) -> dict:
    """What a fold's result depends on: the CLI settings and the augmentation actually used."""
    identity = {**cfg.identity(), "augmentation": dataclasses.asdict(augmentation(cfg)) if cfg.augment else None}
    for name in AUGMENT_FIELDS:  # recorded inside "augmentation"; kept out so run folders from before the flag still resume
        identity.pop(name)
    if cfg.model != "sincnet":  # means nothing for other models
        identity.pop("sinc_units")
    if cfg.head_segments == 1:  # the papers' head: run folders from before --head-segments still resume
        identity.pop("head_segments")
    if cfg.val_by == TrainConfig.val_by:  # likewise for run folders from before --val-by
        identity.pop("val_by")
    if not cfg.teacher:  # kept out of plain runs' run.json, which then still match those from before --teacher
        for name in ("teacher", "teacher_weight", "teacher_temperature"):
            identity.pop(name)
    return json.loads(json.dumps(identity))  # tuples -> lists, as read back from run.json


# TrainConfig fields that set the augmentation (--speed, --eq, --masks): the names both dataclasses share.
AUGMENT_FIELDS = tuple(f.name for f in dataclasses.fields(Augment) if f.name in {g.name for g in dataclasses.fields(TrainConfig)})


def augmentation(cfg: TrainConfig) -> Augment:
    """The train.augment.Augment a run uses: its defaults, overridden by the CLI's AUGMENT_FIELDS."""
    return Augment(**{name: getattr(cfg, name) for name in AUGMENT_FIELDS})


def _mean_std(rows: list[dict]) -> tuple[dict, dict]:
    keys = [*SUMMARY_KEYS, *(k for k in OPTIONAL_SUMMARY_KEYS if all(r.get(k) is not None for r in rows))]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    std = {k: float(np.std([r[k] for r in rows])) for k in keys}
    return mean, std


def usable_cores() -> int:
    """CPUs this process may run on (its affinity: 1 under ``taskset -c 0``), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity call (macOS, Windows)
        return os.cpu_count() or 1


def resolve_rate(model: str, dataset: str, sample_rate: int | None) -> int:
    from train.models import get_entry

    entry = get_entry(model)
    if sample_rate is None:  # FSDD is 8 kHz audio: use the 1D paper's 8 kHz models for it
        sample_rate = 8000 if dataset == "fsdd" and 8000 in entry.sample_rates else 22050
    if sample_rate not in entry.sample_rates:
        raise DataError(f"model {entry.name} runs at {', '.join(map(str, entry.sample_rates))} Hz, not {sample_rate}")
    return sample_rate


@dataclass(frozen=True)
class RunPlan:
    """What every fold of one run shares; built without writing anything (``train.grid`` builds
    it in the driver and again inside each task)."""

    cfg: TrainConfig
    entry: object  # train.models registry entry
    rate: int
    dataset: object  # train.data.Dataset
    folds: list
    model_config: object  # train.config.ModelConfig
    fit: object  # train.fit_config.FitConfig
    meta: dict
    labels: np.ndarray
    teachers: list = dataclasses.field(default_factory=list)  # --teacher run folders (Path), checked against the folds


# Units of SincNet's trainable cut-offs (train.layers.SincConv1D): plain Hz, or fractions of the sample rate.
SINC_UNITS = ("hz", "sample-rate")
# Settings whose default changed: a run.json written before the setting existed was trained this way.
LEGACY_SETTINGS = {"sinc_units": "hz"}


def plan(cfg: TrainConfig) -> RunPlan:
    """Resolve model, rate, dataset listing and folds (raises DataError/ValueError on bad settings)."""
    from train.config import ModelConfig
    from train.fit_config import FitConfig, hop_samples

    # First, and without TensorFlow: a bad --lr or --ema is refused at once, not after Keras loads.
    fit = FitConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, learning_rate=cfg.lr, seed=cfg.seed,
                    augment=cfg.augment, augmentation=augmentation(cfg), patience=cfg.patience, monitor=cfg.monitor,
                    schedule=cfg.schedule, label_smoothing=cfg.label_smoothing, mixup=cfg.mixup,
                    ema=cfg.ema)
    from train.models import build, get_entry

    entry = get_entry(cfg.model)
    rate = resolve_rate(cfg.model, cfg.dataset, cfg.sample_rate)
    dataset = load_dataset(cfg.dataset, Path(cfg.data))
    folds = make_folds(dataset, cfg.protocol, seed=cfg.seed, k=cfg.k, val_fraction=cfg.val_fraction, val_by=cfg.val_by)
    if cfg.cache_dir is not None:
        AudioCache(cfg.cache_dir)  # creates the folder: one that cannot be is a one-line error before run.json is written
    if cfg.sinc_units not in SINC_UNITS:
        raise ValueError(f"sinc_units must be one of {', '.join(SINC_UNITS)}, got {cfg.sinc_units!r}")
    model_config = ModelConfig(name=entry.name, num_classes=len(dataset.labels), sample_rate=rate,
                               input_samples=None if cfg.window is None else int(round(cfg.window * rate)),
                               sinc_hz_per_unit=float(rate) if cfg.sinc_units == "sample-rate" else 1.0,
                               head_segments=cfg.head_segments)
    if cfg.window is not None or cfg.head_segments != 1:
        build(model_config)  # a window too short for the model: its one-line ValueError now, before any training
    window = model_config.window_samples(entry.family)
    meta = {"model_config": model_config.to_dict(), "labels": list(dataset.labels), "sample_rate": rate,
            "window_samples": window, "hop_samples": hop_samples(window, fit), "dataset": dataset.name,
            "protocol": cfg.protocol}
    labels = np.array([c.label for c in dataset.clips], dtype=np.int64)
    teachers = []
    if cfg.teacher:
        from train.distill import check_settings, load_teachers

        check_settings(cfg.teacher_weight, cfg.teacher_temperature)
        trained = folds if cfg.max_folds is None else folds[: cfg.max_folds]  # a teacher needs only the folds trained here
        teachers = load_teachers(cfg.teacher, dataset, cfg.protocol, folds, trained, final=cfg.final)
    return RunPlan(cfg, entry, rate, dataset, folds, model_config, fit, meta, labels, teachers)


def _read_json(path: Path, remedy: str) -> dict:
    """A run's own JSON file (run.json, a fold's result.json), or a one-line DataError naming it."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:  # ValueError: JSONDecodeError, UnicodeDecodeError
        raise DataError(f"{path} is unreadable ({type(e).__name__}: {str(e)[:120]}); {remedy}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} is not a JSON object; {remedy}")
    return data


def _finished_fold(result_file: Path, fold: Fold, n_classes: int) -> dict:
    """A finished fold's result, checked against the fold this data gives: a run resumed on another
    --data folder (other speakers, or clips added or removed) must not mix in folds of other clips."""
    result = _read_json(result_file, "delete it to train that fold again")
    _check_result(result, result_file, n_classes)
    differ = changed_counts(result, fold)
    if result["name"] != fold.name:
        differ = {"name": (result["name"], fold.name), **differ}
    if differ:
        was = ", ".join(f"{k} {a}" for k, (a, _) in differ.items())
        is_ = ", ".join(f"{k} {b}" for k, (_, b) in differ.items())
        raise DataError(f"fold {fold.index} of {result_file.parent.parent} was trained on other clips ({was}; this --data "
                        f"gives {is_}): the data changed since, so use another --out")
    return result


# What summary.json reads from a finished fold's result.json besides SUMMARY_KEYS, and the range of each
# number: a hand-edited or foreign file must stop the run here, not as a traceback or a NaN in summary.json.
RESULT_KEYS = ("name", "confusion", "history")
RESULT_RANGES = {"accuracy": (0, 1), "precision": (0, 1), "recall": (0, 1), "f1": (0, 1), "epochs": (1, np.inf),
                 "best_epoch": (1, np.inf), "train_seconds": (0, np.inf)}
assert set(RESULT_RANGES) == set(SUMMARY_KEYS)
OPTIONAL_RANGES = {"train_cpu_seconds": (0, np.inf), "cores": (1, np.inf)}  # None or absent: not recorded


def _check_result(result: dict, result_file: Path, n_classes: int) -> None:
    """DataError (one line naming the file) unless ``result`` holds every field summary.json reads,
    its numbers finite and in range and its confusion matrix n_classes x n_classes counts."""
    remedy = f"delete {result_file.parent} to train that fold again"
    missing = [k for k in (*SUMMARY_KEYS, *RESULT_KEYS) if k not in result]
    if missing:
        raise DataError(f"{result_file} lacks {', '.join(missing)}; {remedy}")

    def in_range(v, lo, hi) -> bool:  # bool is an int to Python; "NaN" as a string is no number
        return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v)) and lo <= v <= hi

    bad = [f"{k} {result[k]!r}" for k, (lo, hi) in RESULT_RANGES.items() if not in_range(result[k], lo, hi)]
    bad += [f"{k} {result[k]!r}" for k, (lo, hi) in OPTIONAL_RANGES.items()
            if result.get(k) is not None and not in_range(result[k], lo, hi)]
    if bad:
        raise DataError(f"{result_file} holds {', '.join(bad)}, out of range or not a number; {remedy}")
    try:
        confusion = np.array(result["confusion"], dtype=float)
    except (TypeError, ValueError):  # ragged or not numbers
        confusion = None
    if confusion is None or confusion.shape != (n_classes, n_classes) or not (np.isfinite(confusion) & (confusion >= 0)).all():
        raise DataError(f"{result_file} has no {n_classes} x {n_classes} confusion matrix of counts; {remedy}")
    if not isinstance(result["name"], str) or not isinstance(result["history"], dict) or not isinstance(result.get("trained_on", {}), dict):
        raise DataError(f"{result_file} has a malformed name, history or trained_on; {remedy}")


def finished_folds(p: RunPlan) -> dict[int, dict]:
    """fold index -> checked result of every fold of the run with a result.json on disk, trained in
    this invocation or not: --max-folds limits what is trained, never what summary.json covers."""
    out = Path(p.cfg.out)
    return {f.index: _finished_fold(out / f"fold_{f.index}" / "result.json", f, len(p.dataset.labels))
            for f in p.folds if (out / f"fold_{f.index}" / "result.json").is_file()}


def claim(cfg: TrainConfig) -> Path:
    """Create the run folder and record its settings in run.json; refuse a folder holding other settings."""
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # an existing file, a folder under a file, a read-only or virtual place
        raise DataError(f"cannot use {out} as the run folder ({e.strerror or type(e).__name__})") from None
    run_file = out / "run.json"
    identity = _identity(cfg)
    if run_file.is_file():
        # a setting added to TrainConfig after the run was started reads as its default
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
        defaults.update(LEGACY_SETTINGS)
        before = {**{k: v for k, v in defaults.items() if k in identity}, **_read_json(run_file, "use another --out")}
        if "sinc_units" not in identity:  # recorded for every model for a while; means nothing outside sincnet
            before.pop("sinc_units", None)
        if isinstance(before.get("augmentation"), dict):  # likewise an augmentation setting added later
            before["augmentation"] = {**json.loads(json.dumps(dataclasses.asdict(Augment()))), **before["augmentation"]}
        if before != identity:
            changed = sorted(k for k in set(before) | set(identity) if before.get(k) != identity.get(k))
            raise DataError(f"{out} holds a run with different settings ({', '.join(changed)}); use another --out")
    else:
        # Without run.json nothing says which settings trained the work already there: resuming would
        # skip it as "done before" and credit it to these settings in summary.json.
        done = sorted(str(f.relative_to(out)) for f in out.glob("fold_*/result.json"))
        done += ["final/model.keras"] if (out / "final" / "model.keras").is_file() else []
        if done:
            raise DataError(f"{out} holds finished work ({', '.join(done[:3])}{', ...' if len(done) > 3 else ''}) but no "
                            "run.json, so the settings it was trained with are unknown: restore its run.json or use another --out")
    _write_json(run_file, identity)
    return out


def train_fold(p: RunPlan, fold: Fold, audio: list, fold_dir: Path, state_dir: Path | None = None) -> dict:
    """Train and evaluate one fold into ``fold_dir``; result.json is written last. Returns the result.

    ``state_dir``: the folder whose ``resume.npz`` keeps the fold's state after every epoch, and is
    resumed from (``train.epoch_state``); ``fold_dir`` unless given (the grid trains in a throw-away
    folder and keeps it in the fold's own folder, so either command resumes the other's fold)."""
    from train.fit import evaluate, train
    from train.plots import confusion_png, curves_png

    cfg, entry, dataset, labels = p.cfg, p.entry, p.dataset, p.labels
    fold_dir.mkdir(exist_ok=True)
    remove_partials(fold_dir)  # temporary files of a run killed mid-write
    _write_json(fold_dir / "config.json", {**p.meta, "fold": fold.name})
    ckpt = fold_dir / "model.keras"
    fit_k = dataclasses.replace(p.fit, seed=cfg.seed + fold.index)
    targets = _distilled_targets(p, f"fold_{fold.index}", fold.train, audio)
    state = (state_dir or fold_dir) / RESUME
    r = train(p.model_config, [audio[i] for i in fold.train], labels[list(fold.train)],
              [audio[i] for i in fold.val], labels[list(fold.val)], fit_k, ckpt,
              desc=f"{entry.name} fold {fold.index + 1}/{len(p.folds)} ({fold.name})", progress=cfg.progress,
              train_targets=targets, state_path=state)
    if r["resumed_at"]:
        print(f"fold {fold.index} ({fold.name}): resumed after epoch {', '.join(map(str, r['resumed_at']))}", file=sys.stderr)
    ev = evaluate(ckpt, p.model_config, [audio[i] for i in fold.test], labels[list(fold.test)], fit_k)
    result = {"fold": fold.index, "name": fold.name, **{k: ev[k] for k in ("accuracy", "precision", "recall", "f1")},
              "epochs": r["epochs"], "best_epoch": r["best_epoch"], "train_seconds": r["seconds"],
              "train_cpu_seconds": r["cpu_seconds"], "cores": usable_cores(), "malloc_tuned": r["malloc_tuned"],
              "n_train": len(fold.train), "n_val": len(fold.val), "n_test": len(fold.test),
              "confusion": ev["confusion"], "history": r["history"], "trained_on": trained_on(),
              **({"resumed_at": r["resumed_at"]} if r["resumed_at"] else {})}
    confusion_png(np.array(ev["confusion"]), dataset.labels, fold_dir / "confusion.png",
                  f"{entry.name} {dataset.name} {fold.name}: accuracy {ev['accuracy']:.3f}")
    curves_png([(fold.name, r["history"])], fold_dir / "curves.png", f"{entry.name} {dataset.name} {fold.name}")
    _write_json(fold_dir / "result.json", result)  # last: marks the fold finished
    state.unlink(missing_ok=True)
    return result


def _distilled_targets(p: RunPlan, part: str, indices, audio: list) -> np.ndarray | None:
    """With --teacher: soft training targets (float32 (len(indices), C)) from the teachers' models
    in ``part`` (fold_K or final) for the clips ``indices``; None for a plain run."""
    if not p.teachers:
        return None
    from train.distill import soft_targets, teacher_probs

    def audio_at(rate: int, clip_indices) -> list:
        if rate == p.rate:
            return [audio[i] for i in clip_indices]
        return decode([p.dataset.clips[i] for i in clip_indices], rate, AudioCache(p.cfg.cache_dir), progress=p.cfg.progress)

    probs = teacher_probs(p.teachers, part, indices, audio_at)
    return soft_targets(p.labels[list(indices)], probs, p.cfg.teacher_weight, p.cfg.teacher_temperature)


def write_summary(p: RunPlan, results: list[dict]) -> dict:
    """summary.json (+ run-level confusion and curves PNGs) over ``results``: every finished fold of
    the run, checked and in fold order, as :func:`finished_folds` gives them (so a re-run with a smaller
    --max-folds never shrinks a summary)."""
    from train.metrics import class_recall, weakest_cells
    from train.plots import confusion_png, curves_png, recall_png

    cfg, entry, dataset, out = p.cfg, p.entry, p.dataset, Path(p.cfg.out)
    window = p.meta["window_samples"]
    summary = {**_summarise(cfg, entry, dataset, p.rate, window, p.folds, results), "model_config": p.model_config.to_dict()}
    if results:
        confusions = [np.array(r["confusion"]) for r in results]
        names = [r["name"] for r in results]
        summary["weakest_cells"] = weakest_cells(confusions, names, dataset.labels)
        cm = np.sum(confusions, axis=0)
        title = f"{entry.name} {dataset.name} {cfg.protocol}, {len(results)} fold(s): accuracy {summary['mean']['accuracy']:.3f}"
        confusion_png(cm, dataset.labels, out / "confusion.png", title)
        recall_png(np.stack([class_recall(c) for c in confusions]), names, dataset.labels, out / "recall_by_fold.png",
                   f"{title}; recall per fold and class")
        curves_png([(r["name"], r["history"]) for r in results], out / "curves.png", f"{entry.name} {dataset.name} {cfg.protocol}")
    _write_json(out / "summary.json", summary)
    return summary


def run(cfg: TrainConfig) -> dict:
    """Train every (unfinished) fold, then write the summary and plots. Returns the summary."""
    p = plan(cfg)
    out = claim(cfg)
    audio = None  # decoded lazily: a fully finished run does not touch the audio

    todo = p.folds if cfg.max_folds is None else p.folds[: cfg.max_folds]  # 0 with --final: only the final model
    finished = finished_folds(p)  # every one on disk, checked before any training
    for fold in todo:
        if fold.index in finished:
            (out / f"fold_{fold.index}" / RESUME).unlink(missing_ok=True)  # a kill right after result.json
            print(f"fold {fold.index} ({fold.name}): done before, skipped", file=sys.stderr)
            continue
        if audio is None:
            audio = decode(p.dataset.clips, p.rate, AudioCache(cfg.cache_dir), progress=cfg.progress)
        result = train_fold(p, fold, audio, out / f"fold_{fold.index}")
        finished[fold.index] = result
        write_summary(p, [finished[i] for i in sorted(finished)])  # after every fold, so an interrupted run still reports what it finished
        print(f"fold {fold.index} ({fold.name}): accuracy {result['accuracy']:.3f}, macro F1 {result['f1']:.3f}", file=sys.stderr)

    results = [finished[i] for i in sorted(finished)]
    summary = write_summary(p, results)
    if cfg.final:
        _final(p, out, results, audio)
    return summary


def _summarise(cfg, entry, dataset, rate, window, folds: list[Fold], results: list[dict]) -> dict:
    rows = [{k: v for k, v in r.items() if k not in ("history", "confusion")} for r in results]
    mean, std = _mean_std(results) if results else ({}, {})
    return {"model": entry.name, "family": entry.family, "dataset": dataset.name, "protocol": cfg.protocol,
            "sample_rate": rate, "window_samples": window, "labels": list(dataset.labels), "clips": len(dataset.clips),
            "folds_total": len(folds), "folds_done": len(results), "complete": len(results) == len(folds),
            "folds": rows, "mean": mean, "std": std, "config": _identity(cfg), "machine": machine(results)}


def _final(p: RunPlan, out: Path, results: list[dict], audio: list | None) -> None:
    """One model on all clips, no validation: trained for the folds' median best epoch."""
    from train.fit import train

    cfg = p.cfg
    final_dir = out / "final"
    if (final_dir / "model.keras").is_file() and (final_dir / "config.json").is_file():
        (final_dir / RESUME).unlink(missing_ok=True)  # a kill right after config.json
        print("final model: done before, skipped", file=sys.stderr)
        return
    if audio is None:
        audio = decode(p.dataset.clips, p.rate, AudioCache(cfg.cache_dir), progress=cfg.progress)
    epochs = int(np.median([r["best_epoch"] for r in results])) if results else cfg.epochs
    final_dir.mkdir(exist_ok=True)
    remove_partials(final_dir)
    state = final_dir / RESUME
    r = train(p.model_config, audio, p.labels, None, None, dataclasses.replace(p.fit, epochs=epochs),
              final_dir / "model.keras", desc=f"{p.model_config.name} final (all data)", progress=cfg.progress,
              train_targets=_distilled_targets(p, "final", range(len(audio)), audio), state_path=state)
    _write_json(final_dir / "config.json", {**p.meta, "fold": "all data", "epochs": epochs, "train_seconds": r["seconds"],
                                             "train_cpu_seconds": r["cpu_seconds"], "cores": usable_cores()})
    state.unlink(missing_ok=True)
    print(f"final model: {epochs} epochs on all {len(audio)} clips, {r['seconds']:.0f} s → {final_dir / 'model.keras'}",
          file=sys.stderr)


# TrainConfig fields set by add_training_arguments (each option's dest is its field's name): what a
# grid shares between its runs; the other fields name the run (model, dataset, seed, ...) or its I/O.
TRAINING_FIELDS = ("sample_rate", "window", "epochs", "batch_size", "lr", "augment", "k", "val_fraction", "val_by", "patience", "monitor",
                   "schedule", "label_smoothing", "mixup", "ema", "speed", "eq_db", "masks", "sinc_units",
                   "head_segments")
assert set(TRAINING_FIELDS) <= {f.name for f in dataclasses.fields(TrainConfig)}, TRAINING_FIELDS


def add_training_arguments(p) -> None:
    """The options that set how a fold trains, on a parser or argument group. ``python -m train`` and
    ``python -m train.grid`` both call this, so the two CLIs accept the same settings with the same help;
    ``training_fields`` turns the parsed values into TrainConfig fields."""
    p.add_argument("--sample-rate", type=int, default=None, help="model rate in Hz (default: 8000 for fsdd with 1D models, else 22050)")
    p.add_argument("--window", type=float, default=None, metavar="SECONDS",
                   help="model input window in seconds (default: the paper's, 1 s for 1D models and 4 s for 2D). "
                   "Shorter clips are zero-padded, longer ones give several windows; a shorter 2D window also "
                   "shrinks its dense layer, so it is a different model from the paper's")
    p.add_argument("--epochs", type=int, default=30, help="maximum epochs per fold (default: 30)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per batch (default: 32)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random time shift, gain and noise on training batches (default: on)")
    p.add_argument("--k", type=int, default=3, help="folds for --protocol kfold (default: 3)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the training side held out for checkpoint selection (default: 0.1)")
    p.add_argument("--val-by", choices=VAL_BY, default="recording",
                   help="what the validation share holds out whole under loso, official and kfold. recording "
                   "(default): validation clips come from speakers that also train, so the kept checkpoint is the "
                   "one best on known voices. speaker: whole speakers are held out, unseen in training as the test "
                   "speakers are, so the checkpoint is picked on what the test measures, at the cost of their "
                   "clips in training (needs a dataset with speakers)")
    p.add_argument("--patience", type=int, default=None, help="early stopping after this many epochs without a better --monitor value (default: off)")
    p.add_argument("--monitor", choices=("val_loss", "val_accuracy"), default="val_loss",
                   help="which validation figure picks the kept checkpoint (and early stopping): lowest val_loss, "
                   "as the papers (default), or highest window-level val_accuracy — better when a model overfits "
                   "and its validation loss climbs on confident mistakes from the first epochs")
    p.add_argument("--schedule", choices=("constant", "cosine"), default="constant",
                   help="learning rate over training: constant (the papers, default) or cosine decay to 0 by the last epoch")
    p.add_argument("--label-smoothing", type=float, default=0.0, metavar="EPS",
                   help="cross-entropy against labels smoothed by EPS towards uniform (default: 0, off)")
    p.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                   help="mix random pairs of training windows and their labels, weight ~ Beta(ALPHA, ALPHA) (default: 0, off; 0.2-0.4 is usual)")
    p.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="keep an exponential moving average of the weights, updated every step with this decay; "
                   "validation, the kept checkpoint and --final use the average (default: 0, off; 0.99-0.999 is usual)")
    p.add_argument("--speed", type=float, nargs=2, default=(1.0, 1.0), metavar=("LO", "HI"),
                   help="random playback-speed range for training windows, e.g. 0.9 1.1 (default: 1 1, off)")
    p.add_argument("--eq", type=float, default=0.0, metavar="DB", dest="eq_db",
                   help="random equaliser on training windows, up to ±DB at 8 log-spaced frequencies: a stand-in "
                   "for other microphones and rooms (default: 0, off)")
    p.add_argument("--masks", type=int, default=0, metavar="N",
                   help="SpecAugment-style masking on the waveform: N time masks (each zeroes up to 10 %% of the "
                   "window) and N frequency masks (each removes up to 10 %% of the log-frequency axis) (default: 0, off)")
    p.add_argument("--sinc-units", choices=SINC_UNITS, default=None,
                   help="sincnet only: units its trainable band edges are stored in. sample-rate (default; fractions "
                   "of it, as SincNet's first code): an Adam step moves an edge by about lr x rate Hz and the filters "
                   "adapt to the data; hz (SincNet's current reference code; runs before this option): Adam at lr 1e-3 "
                   "moves them under 2 Hz in a run, so the mel-spaced start stays in practice a fixed filter bank")
    p.add_argument("--head-segments", type=int, default=1, metavar="S",
                   help="1D models only: 1 (default) is the papers' head, global average pooling over time, which "
                   "sees the mean of frame features and not their order. S > 1 (ours, not in the papers) averages "
                   "the last feature map into S equal time segments, kept in order, and flattens them into the "
                   "head: the classifier can use the order of events (python -m train.order_probe measures how "
                   "much a model does); adds (S - 1) x channels x 64 weights, about 18k at S = 4")


# Longest --window to train with: a 2D model's dense layer grows with it, and a minute already takes
# 2.6 M samples a window at 44.1 kHz; longer is a typo, not an experiment. (runtime.limits allows ten
# minutes to a model's metadata: reading a window is cheap, training on it is not.)
MAX_TRAIN_WINDOW_SECONDS = 60.0


def training_fields(args: argparse.Namespace, models: list[str]) -> dict:
    """TrainConfig fields from the options of ``add_training_arguments``, checked for the given models.
    Raises ValueError with a one-line message on a bad value."""
    for name in ("epochs", "batch_size", "k"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if args.window is not None and not 0 < args.window <= MAX_TRAIN_WINDOW_SECONDS:  # also refuses nan
        raise ValueError(f"--window must be a positive number of seconds up to {MAX_TRAIN_WINDOW_SECONDS:g}, got {args.window}")
    if not 0 < args.val_fraction < 1:
        raise ValueError(f"--val-fraction must be between 0 and 1, got {args.val_fraction}")
    # An option that would change nothing is refused: a run folder records every setting, and one
    # that says "--k 5" for a leave-one-speaker-out run would misstate how it was trained.
    if args.k != TrainConfig.k and args.protocol != "kfold":
        raise ValueError(f"--k sets the folds of --protocol kfold; --protocol {args.protocol} ignores it")
    if args.val_by != TrainConfig.val_by and args.protocol in ("split", "random-split"):
        raise ValueError(f"--val-by applies to loso, official and kfold; --protocol {args.protocol} draws its validation "
                         "share its own way (split: whole speakers already; random-split: single clips)")
    if args.val_fraction != TrainConfig.val_fraction and args.protocol in ("split", "random-split"):
        raise ValueError(f"--val-fraction holds out validation clips from each fold's training side; --protocol "
                         f"{args.protocol} has its own 80/10/10 validation share and ignores it")
    unused = [flag for flag, on in (("--speed", tuple(args.speed) != (1.0, 1.0)), ("--eq", args.eq_db != 0.0),
                                    ("--masks", args.masks != 0)) if on]
    if unused and not args.augment:
        raise ValueError(f"{' and '.join(unused)} shape the training augmentation, which --no-augment turns off")
    if args.sinc_units is not None and "sincnet" not in models:
        raise ValueError(f"--sinc-units applies to sincnet only, not {' '.join(models)}")
    if args.head_segments < 1:
        raise ValueError(f"--head-segments must be at least 1, got {args.head_segments}")
    if args.head_segments != 1:
        from train.config import TWO_D
        from train.models import get_entry  # imports Keras: only when the option is used

        two_d = [m for m in models if get_entry(m).family == TWO_D]
        if two_d:
            raise ValueError(f"--head-segments applies to the 1D models only, not {' '.join(two_d)} "
                             "(the 2D models flatten their whole feature map in time order)")
    return {**{name: getattr(args, name) for name in TRAINING_FIELDS},
            "speed": tuple(args.speed), "sinc_units": args.sinc_units or TrainConfig.sinc_units}


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m train",
        description=textwrap.fill(  # filled here: the raw formatter keeps the examples' lines as written
            "Train a zoo model on a dataset under an evaluation protocol: every fold, with a progress "
            "bar; writes per-fold best-validation-loss checkpoints (.keras) with their config, summary.json "
            "(accuracy, macro precision/recall/F1, epochs, seconds per fold, mean and std), a confusion-matrix "
            "PNG and training-curve PNGs. Re-running the same command resumes: finished folds are skipped "
            "and a fold that was cut off goes on from its last finished epoch.", 79),
        epilog="examples:\n"
        "  python -m train --model lv24 --dataset fsdd --data ../shared/data/fsdd --protocol loso --out runs/fsdd_lv24\n"
        "  KERAS_BACKEND=jax python -m train ...   # on a GPU machine, without TensorFlow (docs/training.md);\n"
        "                                          # the checkpoints export as they are",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="zoo model: lv18 lv24 lv42 lv81 earlymix latemix rollmix sincnet conv2d convdf convdt convdb")
    p.add_argument("--dataset", required=True, choices=sorted(LOADERS), help="dataset layout of --data")
    p.add_argument("--data", required=True, help="folder holding the dataset in its original layout")
    p.add_argument("--protocol", required=True, choices=PROTOCOLS,
                   help="loso: leave one speaker out; official: the dataset's folds; kfold: speaker-independent "
                   "k-fold (--k); split: one seeded 80/10/10 train/validation/test split keeping recordings on one side; "
                   "random-split: the same over clips, as the 2D paper (leaks recordings; to measure the inflation)")
    p.add_argument("--out", required=True, help="run folder, e.g. runs/NAME")
    p.add_argument("--seed", type=int, default=0, help="seed for splits, initialisation and batches (default: 0)")
    add_training_arguments(p)
    p.add_argument("--teacher", action="append", default=[], metavar="RUN",
                   help="distil from a finished run folder of this dataset (e.g. a 2D model's): its fold models' "
                   "clip probabilities become soft training labels; repeat to average several teachers. It must "
                   "share this run's --protocol, --seed and --k, so it never saw a fold's test clips (checked)")
    p.add_argument("--teacher-weight", type=float, default=0.5, metavar="W",
                   help="with --teacher: targets are (1 - W) x one-hot + W x teacher (default: 0.5)")
    p.add_argument("--teacher-temperature", type=float, default=2.0, metavar="T",
                   help="with --teacher: flatten the teacher's probabilities as logits / T would (default: 2)")
    p.add_argument("--max-folds", type=int, default=None, help="train only the first N folds (quick runs; 0 with --final: only the final model); "
                   "summary.json still covers every finished fold in --out")
    p.add_argument("--final", action="store_true", help="also train one model on all the data, for export (runs/NAME/final/)")
    p.add_argument("--cache-dir", default=None, help="keep decoded, resampled audio here across runs (default: memory only)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is the host or the accelerator running out of memory: numpy's MemoryError,
    TensorFlow's ResourceExhaustedError, or XLA's RESOURCE_EXHAUSTED status under JAX (seen when twelve
    trainings shared one GPU without preallocation)."""
    text = f"{type(e).__name__}: {e}"
    return isinstance(e, MemoryError) or any(
        s in text for s in ("ResourceExhaustedError", "RESOURCE_EXHAUSTED", "CUDA_ERROR_OUT_OF_MEMORY", "Out of memory"))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.max_folds is not None and args.max_folds < 0:
        print("error: --max-folds must be 0 or more", file=sys.stderr)
        return 2
    if not 0 <= args.seed <= MAX_SEED:  # fold K trains with seed + K; numpy and TensorFlow take seeds below 2**32
        print(f"error: --seed must be between 0 and {MAX_SEED}, got {args.seed}", file=sys.stderr)
        return 2
    model = args.model.lower()
    if not args.teacher and (args.teacher_weight, args.teacher_temperature) != (TrainConfig.teacher_weight, TrainConfig.teacher_temperature):
        print("error: --teacher-weight and --teacher-temperature apply only with --teacher", file=sys.stderr)
        return 2
    try:
        cfg = TrainConfig(model=model, dataset=args.dataset, data=args.data, protocol=args.protocol,
                          out=args.out, seed=args.seed, **training_fields(args, [model]),
                          max_folds=args.max_folds, final=args.final, cache_dir=args.cache_dir, progress=not args.quiet,
                          teacher=tuple(args.teacher), teacher_weight=args.teacher_weight,
                          teacher_temperature=args.teacher_temperature)
        summary = run(cfg)
    except (DataError, ValueError) as e:  # ValueError: the zoo's one-line configuration errors
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to resume (finished folds are kept)", file=sys.stderr)
        return 130
    except Exception as e:
        if not out_of_memory(e):
            raise
        first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        print(f"error: out of memory ({first[:160]}); finished folds are kept: lower --batch-size or train fewer "
              "models at once on this device, then re-run the same command to resume", file=sys.stderr)
        return 1
    if summary["folds_done"]:
        m, s = summary["mean"], summary["std"]
        print(f"{summary['model']} {summary['dataset']} {summary['protocol']}: {summary['folds_done']}/{summary['folds_total']} folds, "
              f"accuracy {m['accuracy']:.3f} ± {s['accuracy']:.3f}, macro F1 {m['f1']:.3f} → {Path(cfg.out) / 'summary.json'}")
    return 0


if __name__ == "__main__":
    code = main()
    # Everything is saved and reported: a Ctrl-C from here on (TensorFlow's exit handlers take a
    # moment) would only print a traceback from inside them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)
