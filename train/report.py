"""Gather training runs into one accuracy report beside the papers' numbers.

    python -m train.report runs/* --out benchmarks/results/accuracy.md   # also accuracy.json and accuracy.png

Each run folder must hold a ``summary.json`` written by ``python -m train``; others are
skipped with a note. Runs are grouped by (dataset, protocol, sample rate); within a group
every model gets, like the 1D paper's Table 3, its performance and training time relative
to the lowest in the group.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import re
import statistics
import sys
from pathlib import Path

from runtime.cli import ArgumentParser
from runtime.files import write_atomic
from train.__main__ import LEGACY_SETTINGS, TrainConfig
from train.data import unwritable
from train.plots import accuracy_png

# Published numbers, copied from shared/docs/model-spec.md ("Published results to compare against").
# 1D paper (Vrysis et al., AES 2020), Table 2: accuracy %, mean ± std over folds.
PAPER_1D = {
    "aesdd": {"task": "AESDD 3-fold (EMO-DB 5-class is our stand-in)",
              "lv18": (66.5, 1.9), "lv24": (65.6, 1.9), "lv42": (61.0, 1.1), "lv81": (50.2, 1.0),
              "earlymix": (64.5, 3.7), "latemix": (59.4, 1.0), "rollmix": (67.2, 0.9), "sincnet": (66.4, 3.4)},
    "fsdd": {"task": "FSDD leave-one-speaker-out, 8 kHz",
             "lv18": (58.6, 9.7), "lv24": (58.1, 7.4), "lv42": (52.8, 10.3),
             "earlymix": (53.7, 12.9), "latemix": (55.7, 13.5), "rollmix": (57.9, 16.3), "sincnet": (67.9, 8.4)},
    "urbansound8k": {"task": "UrbanSound8K official 10-fold",
                     "lv18": (71.8, 3.5), "lv24": (70.7, 3.7), "lv42": (69.8, 4.3), "lv81": (68.1, 4.3),
                     "earlymix": (70.7, 3.5), "latemix": (70.7, 2.8), "rollmix": (71.4, 3.4), "sincnet": (67.1, 3.3)},
}
# 1D paper, Table 3: performance and training time relative to the lowest (same model order).
PAPER_TABLE3 = {
    "lv18": (1.13, 1.71), "lv24": (1.12, 1.29), "lv42": (1.06, 1.14), "lv81": (1.00, 1.00),
    "earlymix": (1.09, 1.43), "latemix": (1.07, 1.57), "rollmix": (1.12, 1.43), "sincnet": (1.13, 2.57),
}
# 2D paper, Table 2: UrbanSound8K fixed 80/10/10 split (874 test clips): accuracy, F1 (fractions).
PAPER_2D = {"task": "UrbanSound8K fixed 80/10/10 split (all 10 folds)",
            "conv2d": (0.847, 0.857), "convdf": (0.882, 0.888), "convdt": (0.891, 0.896), "convdb": (0.914, 0.917)}
PAPER_1D_TASK = {"fsdd": "fsdd", "emodb": "aesdd", "urbansound8k": "urbansound8k"}
# The protocol of each 1D paper task: a row under another one (FSDD k-fold) has no paper number to stand beside.
PAPER_1D_PROTOCOL = {"fsdd": "loso", "emodb": "kfold", "urbansound8k": "official"}


def paper_value(model: str, dataset: str, protocol: str | None = None) -> list | None:
    """The paper's accuracy for a model on a dataset (under ``protocol``, when given) as numbers:
    [mean %, std % or None], or None. The std is None for the 2D paper, which reports one split
    (accuracy and F1, no spread); the README compares the official folds with it, so it stands
    beside every UrbanSound8K protocol."""
    if model in PAPER_2D and dataset == "urbansound8k":
        return [100 * PAPER_2D[model][0], None]
    if protocol is not None and protocol != PAPER_1D_PROTOCOL.get(dataset):
        return None
    table = PAPER_1D.get(PAPER_1D_TASK.get(dataset, ""), {})
    return list(table[model]) if model in table else None


def paper_number(model: str, dataset: str, protocol: str | None = None) -> tuple[str, str]:
    """(paper accuracy text, paper task) for a model on a dataset (and protocol), or ('–', '')."""
    value = paper_value(model, dataset, protocol)
    if value is None:
        return "–", ""
    mean, std = value
    if std is None:
        return f"{mean:.1f} (F1 {100 * PAPER_2D[model][1]:.1f})", PAPER_2D["task"]
    return f"{mean:.1f} ± {std:.1f}", PAPER_1D[PAPER_1D_TASK[dataset]]["task"]


def load_runs(paths: list[Path]) -> tuple[list[dict], list[str]]:
    """Summaries of the run folders with a finished fold, and a note for each folder skipped.

    Raises ValueError (one line) for a summary.json that cannot be read or holds a non-finite
    accuracy: a report quietly missing a run, or showing NaN, would be read as a result.
    """
    runs, notes, seen = [], [], set()
    for p in paths:
        if p.resolve() in seen:  # runs/x and runs/x/ from two globs: one run, not two rows
            continue
        seen.add(p.resolve())
        f = p / "summary.json"
        if not f.is_file():
            notes.append(f"{p}: no summary.json, skipped")
            continue
        remedy = "remove the run folder from the arguments or train it again"
        try:
            s = json.loads(f.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"{f}: unreadable ({type(e).__name__}); {remedy}") from None
        if not isinstance(s, dict):  # null, a number, a list: valid JSON, but no summary
            raise ValueError(f"{f}: holds {json.dumps(s)[:40]}, not a summary object; {remedy}")
        try:
            accuracies = [float(r["accuracy"]) for r in s.get("folds", [])]
        except (ValueError, TypeError, KeyError) as e:
            raise ValueError(f"{f}: unreadable ({type(e).__name__}); {remedy}") from None
        if not all(math.isfinite(a) for a in accuracies):
            raise ValueError(f"{f}: a fold's accuracy is not a finite number; train that run again")
        if not s.get("folds_done"):
            notes.append(f"{p}: no finished fold, skipped")
            continue
        s["run"] = str(p)
        runs.append(s)
    return runs, notes


def recipe(config: dict) -> str:
    """A run's training recipe in a few words: augmentation on/off and every non-default extra."""
    parts = ["augment" if config.get("augment") else "no augment"]
    aug = (config.get("augmentation") or {}) if config.get("augment") else {}
    speed = aug.get("speed", [1.0, 1.0])
    if list(speed) != [1.0, 1.0]:
        parts.append(f"speed {speed[0]:g}–{speed[1]:g}")
    if aug.get("eq_db"):
        parts.append(f"EQ ±{aug['eq_db']:g} dB")
    if aug.get("masks"):
        parts.append(f"{aug['masks']}+{aug['masks']} masks")
    if config.get("window") is not None:  # --window: not the paper's input length
        parts.append(f"{config['window']:g} s window")
    if config.get("schedule", "constant") != "constant":
        parts.append(f"{config['schedule']} LR")
    if config.get("label_smoothing"):
        parts.append(f"label smoothing {config['label_smoothing']:g}")
    if config.get("mixup"):
        parts.append(f"mixup {config['mixup']:g}")
    if config.get("ema"):
        parts.append(f"weight EMA {config['ema']:g}")
    if config.get("teacher"):  # counted, not named: each seed needs teachers of its own seed, and its seeds share a table
        n = len(config["teacher"])
        parts.append(f"distilled from {n} run{'s' if n > 1 else ''} (weight {config['teacher_weight']:g}, T {config['teacher_temperature']:g})")
    if config.get("lr", TrainConfig.lr) != TrainConfig.lr:
        parts.append(f"lr {config['lr']:g}")
    if config.get("batch_size", TrainConfig.batch_size) != TrainConfig.batch_size:
        parts.append(f"batch {config['batch_size']}")
    if config.get("head_segments", 1) != 1:
        parts.append(f"head: {config['head_segments']} time segments in order")
    if config.get("model") == "sincnet" and config.get("sinc_units", LEGACY_SETTINGS["sinc_units"]) != TrainConfig.sinc_units:
        parts.append("SincNet band edges in Hz")
    # The protocol's own settings: other folds (k), another validation share, an early stop are another
    # training, not the same recipe in one table (and one pooling-vs-striding statement).
    if config.get("protocol") == "kfold" and config.get("k", TrainConfig.k) != TrainConfig.k:
        parts.append(f"k {config['k']}")
    if config.get("val_fraction", TrainConfig.val_fraction) != TrainConfig.val_fraction:
        parts.append(f"validation share {config['val_fraction']:g}")
    if config.get("val_by", TrainConfig.val_by) != TrainConfig.val_by:
        parts.append(f"validation by {config['val_by']}")
    if config.get("patience") is not None:
        parts.append(f"early stop after {config['patience']} epochs")
    return ", ".join(parts)


DEFAULT_RECIPE = "augment"  # what `python -m train` does without recipe options: the papers' recipe + augmentation


def run_row(s: dict) -> dict:
    """One report row from one run's summary.json."""
    seed = s["config"].get("seed", 0)
    config = s.get("model_config")
    return {
        "run": s["run"], "model": s["model"], "dataset": s["dataset"], "protocol": s["protocol"],
        "sample_rate": s["sample_rate"], "folds": f"{s['folds_done']}/{s['folds_total']}",
        "complete": s["complete"], "accuracy": s["mean"]["accuracy"], "accuracy_std": s["std"]["accuracy"],
        "fold_accuracy": {f.get("name", str(f.get("fold"))): f["accuracy"] for f in s.get("folds", [])},
        "weakest_cells": s.get("weakest_cells"),  # None in summaries written before the field
        "f1": s["mean"]["f1"], "precision": s["mean"]["precision"], "recall": s["mean"]["recall"],
        "epochs": s["mean"]["epochs"], "train_seconds": s["mean"]["train_seconds"],
        "train_cpu_seconds": s["mean"].get("train_cpu_seconds"),  # None: a fold did not record it
        "augment": s["config"].get("augment"), "recipe": recipe(s["config"]),
        "head_segments": s["config"].get("head_segments", 1), "max_epochs": s["config"].get("epochs"),
        "monitor": s["config"].get("monitor", "val_loss"),
        "best_epoch": s["mean"].get("best_epoch"),
        **_paper_fields(s["model"], s["dataset"], s["protocol"]),
        "machine": s.get("machine", {}), "clips": s.get("clips"),
        "seed": seed, "label": _label(s["model"], seed),
        "window_samples": s.get("window_samples"),
        # the model's size, built from the ModelConfig the summary stores (None for a summary without one)
        **(_size_of(json.dumps(config, sort_keys=True)) if config else {"num_classes": None, "params": None, "macs": None}),
    }


def _paper_fields(model: str, dataset: str, protocol: str | None = None) -> dict:
    """The paper's number for a row, as text, as numbers, its task and its Table 3 pair."""
    paper, task = paper_number(model, dataset, protocol)
    return {"paper": paper, "paper_value": paper_value(model, dataset, protocol), "paper_task": task,
            "paper_table3": PAPER_TABLE3.get(model)}


def _label(model: str, seed: int) -> str:
    return model + (f" (seed {seed})" if seed else "")


def group_key(r: dict) -> str:
    """The table a row belongs in, before training-length ablations are split off (_split_repeats)."""
    key = f"{r['dataset']} · {r['protocol']} · {r['sample_rate']} Hz"
    if r["monitor"] != "val_loss":  # another checkpoint rule: another table
        key += f" · kept by {r['monitor']}"
    if r["recipe"] != DEFAULT_RECIPE:  # another training recipe: another table
        key += f" · {r['recipe']}"
    if _accelerator(r):  # trained on a GPU: its training times are not comparable with CPU rows
        key += f" ·{_on(r)}"
    if r["seed"]:  # the same training again with another seed: measures run-to-run noise, in a table of its own
        key += f" · {SEED_REPEATS}"
    return key


# Fields a row must carry to be kept from an earlier report (the rest are recomputed or optional).
KEPT_FIELDS = ("run", "model", "dataset", "protocol", "sample_rate", "folds", "complete", "accuracy", "accuracy_std",
               "f1", "epochs", "train_seconds", "recipe", "max_epochs", "monitor", "seed", "machine")

_NUMBER = (int, float)
# The kept fields the report computes with or prints as text: a hand-edited row must stop here, in one
# line, not as a traceback from the table or chart code.
KEPT_TYPES = {"run": str, "model": str, "dataset": str, "protocol": str, "recipe": str, "monitor": str,
              "sample_rate": int, "seed": int, "accuracy": _NUMBER, "accuracy_std": _NUMBER, "f1": _NUMBER,
              "epochs": _NUMBER, "train_seconds": _NUMBER}


OPTIONAL_NUMBERS = ("train_cpu_seconds",)  # None or absent in rows from runs before the field


def _is(value, kind) -> bool:
    """Whether a kept value is of ``kind``, a number being finite and no bool."""
    return isinstance(value, kind) and not isinstance(value, bool) and (kind is not _NUMBER or math.isfinite(value))


def load_kept(path: Path) -> list[dict]:
    """The rows of an earlier report's JSON, one per run (a seed-0 run also listed in a seed-repeats
    table is one run), with the figures recomputed from the whole set (relative performance and
    time, labels, paper numbers) dropped. Raises ValueError with a one-line reason."""
    try:
        groups = json.loads(path.read_text())["groups"]
        rows = [r for table in groups.values() for r in table]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a report JSON written by python -m train.report ({type(e).__name__}: {e})") from None
    kept: dict[str, dict] = {}
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise ValueError(f"{path}: row {i + 1} is {type(r).__name__}, not an object; not a report JSON written by python -m train.report")
        if "seed" not in r:  # rows from reports older than the seed column: a summary without a seed reads as 0 too
            r = {**r, "seed": 0}
        missing = [f for f in KEPT_FIELDS if f not in r]
        if missing:
            raise ValueError(f"{path}: row {r.get('run', '?')} lacks {', '.join(missing)}")
        bad = [f for f, kind in KEPT_TYPES.items() if not _is(r[f], kind)]
        bad += [f for f in OPTIONAL_NUMBERS if r.get(f) is not None and not _is(r[f], _NUMBER)]
        if bad:
            raise ValueError(f"{path}: row {r['run']!r} has a malformed {', '.join(bad)}")
        kept.setdefault(_same_run(r["run"]), {
            **{k: v for k, v in r.items() if k not in ("relative_performance", "relative_training_time", "relative_time_from")},
            "label": _label(r["model"], r["seed"]), **_paper_fields(r["model"], r["dataset"], r["protocol"]),
            **{k: r.get(k) for k in ("num_classes", "params", "macs")}})
    return list(kept.values())


def _same_run(run: str) -> str:
    # absolute: a kept row says runs/x, and the same run given as /work/main/runs/x must replace it
    return os.path.normpath(os.path.abspath(run))


def rows_by_group(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows into tables (see group_key), each with its Table 3 relative figures, best first."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(group_key(r), []).append(r)
    groups = _add_seed_zero(_split_repeats(groups))
    for key, table in groups.items():
        low_acc = min(r["accuracy"] for r in table) or 1e-9
        clock = time_basis(table)
        low_time = min(r[clock] for r in table) or 1e-9
        for r in table:
            r["relative_performance"] = r["accuracy"] / low_acc
            r["relative_training_time"] = r[clock] / low_time
            r["relative_time_from"] = "cpu" if clock == "train_cpu_seconds" else "wall"
        if not _seed_table(key):  # those stay in seed order
            table.sort(key=lambda r: -r["accuracy"])
    return dict(sorted(groups.items(), key=lambda kv: _table_order(kv[0])))


def time_basis(table: list[dict]) -> str:
    """The time a table's relative training time divides: CPU seconds when every run in it recorded
    them (they hardly change when another job shares the machine), else wall seconds."""
    return "train_cpu_seconds" if all(r.get("train_cpu_seconds") for r in table) else "train_seconds"


# The issue's order of tasks; other datasets follow alphabetically.
DATASET_ORDER = ("fsdd", "emodb", "urbansound8k")


def _table_order(key: str) -> tuple:
    """Tables by dataset, then by name, each seed-repeats table right after its own: the same order
    whichever runs were read afresh and which came from --keep."""
    dataset = key.split(" · ", 1)[0]
    rank = DATASET_ORDER.index(dataset) if dataset in DATASET_ORDER else len(DATASET_ORDER)
    base = key.replace(f" · {SEED_REPEATS}", "")
    natural = tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", base))  # 50 before 100 epochs
    return rank, dataset, natural, key != base


def _split_repeats(groups: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """One row per model in a table: a model run again with the same recipe for another number of
    epochs (an ablation of training length) moves to a table of its own, ``key · N epochs``. The run
    kept in place is the one whose epochs are closest to the most common epochs in the table, so
    the table stays a like-for-like comparison and the statements read one number per model."""
    out: dict[str, list[dict]] = {}
    for key, rows in groups.items():
        epochs = [r["max_epochs"] for r in rows]
        common = max(set(epochs), key=lambda e: (epochs.count(e), -(e or 0)))
        by_model: dict[tuple, list[dict]] = {}
        for r in rows:
            by_model.setdefault((r["model"], r["seed"]), []).append(r)
        for same in by_model.values():
            same.sort(key=lambda r: (abs((r["max_epochs"] or 0) - (common or 0)), r["run"]))
            for i, r in enumerate(same):
                # a seed repeat sits with the repeats of its own training length, even when it is the
                # only run of its model and seed (seed 2 at 100 epochs beside seeds 1 at 60 and 100)
                stays = i == 0 and not (_seed_table(key) and r["max_epochs"] != common)
                if stays:
                    out.setdefault(key, []).append(r)
                elif i > 0 and r["max_epochs"] == same[0]["max_epochs"]:  # not a training-length ablation:
                    # settings the recipe label cannot tell apart (a code fix between two runs)
                    out.setdefault(f"{key} · {SAME_SETTINGS}", []).append(r)
                else:
                    out.setdefault(f"{key} · {r['max_epochs']} epochs", []).append(r)
    return out


SEED_REPEATS = "seed repeats"
SAME_SETTINGS = "another run, same settings"


def _seed_table(key: str) -> bool:
    """A table of seed repeats (also when _split_repeats gave it an ``· N epochs`` suffix)."""
    return SEED_REPEATS in key


def _same_training(r: dict) -> tuple:
    """What must match for two runs to differ only in their seed."""
    return r["dataset"], r["protocol"], r["sample_rate"], r["model"], r["monitor"], r["recipe"], r["max_epochs"], _accelerator(r)


def _accelerator(r: dict) -> str | None:
    return (r.get("machine") or {}).get("accelerator")


def _on(r: dict) -> str:
    """" on <GPU>" for a run trained on an accelerator, else ""."""
    return f" on {_accelerator(r)}" if _accelerator(r) else ""


def _add_seed_zero(groups: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Put beside each seed repeat the seed-0 run it repeats (also kept in its own table), labelled
    with its seed, so a seed-repeats table reads every seed of one training side by side."""
    zero = {_same_training(r): r for rows in groups.values() for r in rows if not r["seed"]}
    for key, rows in groups.items():
        if not _seed_table(key):
            continue
        for t in {_same_training(r) for r in rows}:
            if t in zero:
                rows.append({**zero[t], "label": f"{zero[t]['model']} (seed 0)"})
        rows.sort(key=lambda r: (r["model"], r["seed"]))
    return groups


def _statements(groups: dict[str, list[dict]]) -> list[str]:
    """Pooling vs striding and dilation, only from what was measured."""
    out = []
    seeds = _seed_runs(groups)
    for key, rows in groups.items():
        if _seed_table(key):  # one model's seeds, not a comparison of models
            continue
        by = {r["model"]: r for r in rows}
        flat = [m for m in ("lv18", "lv24", "lv42", "lv81") if m in by]
        if len(flat) >= 2:
            parts = ", ".join(f"{m} {100 * by[m]['accuracy']:.1f} % ({by[m]['train_seconds']:.0f} s/fold)" for m in flat)
            best = max(flat, key=lambda m: by[m]["accuracy"])
            out.append(f"Pooling vs striding ({key}): {parts} — from most pooling (lv18: stride 1) to most striding; "
                       f"best here: {best}.")
        dil = [m for m in ("conv2d", "convdf", "convdt", "convdb") if m in by]
        if "conv2d" in by and len(dil) >= 2:
            parts = ", ".join(f"{m} {100 * by[m]['accuracy']:.1f} %" for m in dil)
            better = [m for m in dil if m != "conv2d" and by[m]["accuracy"] > by["conv2d"]["accuracy"]]
            out.append(f"Dilation ({key}): {parts}; dilated models above the undilated conv2d: {', '.join(better) or 'none'}.")
            out += _dilation_over_seeds(key, [by[m] for m in dil], seeds)
    out += _seed_statements(groups, seeds)
    seed_zero = {k: rows for k, rows in groups.items() if not _seed_table(k)}  # only seed-0 rows there
    out += _protocol_statements(seed_zero)
    out += _recipe_statements(seed_zero)
    out += _receptive_statements(seed_zero)
    return out or ["Not enough models measured yet in one task to compare pooling vs striding or dilation."]


def _seed_runs(groups: dict[str, list[dict]]) -> dict[tuple, dict[int, dict]]:
    """The row of each seed of each training (_same_training), by seed: a seed-0 run listed twice
    (its own table and the seed repeats) counts once."""
    seeds: dict[tuple, dict[int, dict]] = {}
    for rows in groups.values():
        for r in rows:
            seeds.setdefault(_same_training(r), {})[r["seed"]] = r
    return seeds


def _dilation_over_seeds(key: str, table: list[dict], seeds: dict[tuple, dict[int, dict]]) -> list[str]:
    """The dilation comparison again with each model's mean over every seed of its training
    (``seeds``: _seed_runs), when some model of the table was repeated: one seed's gaps are
    often inside the seed spread."""
    accs = {r["model"]: [100 * s["accuracy"] for s in seeds[_same_training(r)].values()] for r in table}
    if max(len(a) for a in accs.values()) < 2:
        return []

    def mean_of(m: str) -> str:
        a = accs[m]
        return f"{m} {statistics.mean(a):.1f}" + (f" ± {statistics.stdev(a):.1f} % ({len(a)} seeds)" if len(a) > 1 else " % (1 seed)")

    order = sorted(accs, key=lambda m: -statistics.mean(accs[m]))
    return [f"Dilation over seeds ({key}): {', '.join(mean_of(m) for m in accs)}; ranked by mean: {' > '.join(order)} "
            "(the paper: convdb > convdt > convdf > conv2d)."]


# How each protocol tests: from leakiest to strictest.
PROTOCOL_NOTES = {"random-split": "random clip split (recordings shared by train and test)",
                  "split": "split keeping each recording on one side", "official": "official folds (train on one fold, test on another)"}


def _seed_statements(groups: dict[str, list[dict]], seeds: dict[tuple, dict[int, dict]]) -> list[str]:
    """Every seed of one training (``seeds``: _seed_runs), in the order of the seed tables: how far
    apart they land, against the spread between the models of the seed-0 run's table (a model gap
    inside the seed spread is noise, not a ranking)."""
    out = []
    repeated = dict.fromkeys(_same_training(r) for key, rows in groups.items() if _seed_table(key)
                             for r in sorted(rows, key=_same_training))
    for t in repeated:
        same = sorted(seeds[t].values(), key=lambda r: r["seed"])
        if len(same) >= 2:
            accs = [100 * r["accuracy"] for r in same]
            mean, sd = statistics.mean(accs), statistics.stdev(accs)
            text = (f"Seed repeats ({t[0]} · {t[1]} · {t[2]} Hz, {t[3]}, {t[5]}, {t[6]} epochs{_on(same[0])}): "
                    + ", ".join(f"seed {r['seed']} {a:.1f} %" + ("" if r["complete"] else f" ({r['folds']} folds)")
                                for r, a in zip(same, accs))
                    + f" — mean {mean:.1f} ± {sd:.1f} (std over seeds), spread {max(accs) - min(accs):.1f} points")
            # the table the seed-0 run (added beside its repeats by _add_seed_zero) lives in
            run0 = next((r["run"] for r in same if not r["seed"]), None)
            peers = next((rows0 for k, rows0 in groups.items()
                          if not _seed_table(k) and any(r["run"] == run0 for r in rows0)), [])
            if len(peers) > 1:
                pa = [100 * r["accuracy"] for r in peers]
                text += (f"; the {len(peers)} models of its seed-0 table span {min(pa):.1f}–{max(pa):.1f} % "
                         f"({max(pa) - min(pa):.1f} points), so gaps between them smaller than the seed spread are not a ranking")
            out.append(text + ".")
    return out


def _protocol_statements(groups: dict[str, list[dict]]) -> list[str]:
    """Same model, dataset and rate under several protocols: how much a random split inflates accuracy."""
    by: dict[tuple, dict[str, dict]] = {}
    for rows in groups.values():
        for r in rows:
            key = (r["dataset"], r["sample_rate"], r["model"], r["monitor"], r["recipe"], _accelerator(r) or "")
            by.setdefault(key, {})[r["protocol"]] = r
    out = []
    for (dataset, rate, model, monitor, _, _), protos in sorted(by.items()):
        present = [p for p in PROTOCOL_NOTES if p in protos]
        if "random-split" not in present or len(present) < 2:
            continue
        parts = "; ".join(f"{PROTOCOL_NOTES[p]}: {100 * protos[p]['accuracy']:.1f} % ({protos[p]['max_epochs']} epochs, "
                          f"{protos[p]['folds']} folds)" for p in present)
        gap = ", ".join(f"{100 * (protos['random-split']['accuracy'] - protos[p]['accuracy']):+.1f} points over {p}"
                        for p in present if p != "random-split")
        out.append(f"Random split inflation ({dataset}, {model} @ {rate} Hz, kept by {monitor}): {parts} — "
                   f"the random split reads {gap}.")
    return out


def _receptive_statements(groups: dict[str, list[dict]]) -> list[str]:
    """Per task (dataset · protocol · rate): how much audio each frame a 1D model averages sees
    (train.macs.frame_receptive_field), narrowest first, beside the model's best run there."""
    best: dict[tuple, dict[str, dict]] = {}
    for rows in groups.values():
        for r in rows:
            if r.get("head_segments", 1) != 1:  # --head-segments: its head reads the order (not these frames' mean)
                continue
            by = best.setdefault((r["dataset"], r["protocol"], r["sample_rate"]), {})
            if r["model"] not in by or r["accuracy"] > by[r["model"]]["accuracy"]:
                by[r["model"]] = r
    out = []
    for (dataset, protocol, rate), by in best.items():
        spans = {m: _frame_rf(m, rate) for m in by}
        one_d = sorted((m for m in by if spans[m] is not None), key=lambda m: (spans[m], m))
        if len(one_d) < 2:
            continue
        parts = ", ".join(f"{m} {1000 * spans[m] / rate:.1f} ms ({100 * by[m]['accuracy']:.1f} %)" for m in one_d)
        flat = sorted(m for m in by if spans[m] is None)
        tail = (f"; the 2D models here ({', '.join(flat)}) flatten their whole window, in time order, into a dense layer"
                if flat else "")
        out.append(f"Frame receptive field ({dataset} · {protocol} · {rate} Hz): the 1D models classify the mean of "
                   f"frame features (global average pooling, order discarded), each frame seeing {parts} "
                   f"(span, then the model's best accuracy here with that head, any recipe){tail}.")
    return out


@functools.lru_cache(maxsize=None)
def _frame_rf(model: str, rate: int) -> int | None:
    """Input samples behind each averaged frame of a zoo model at ``rate``; None for the 2D family."""
    from train.quiet import import_keras

    keras = import_keras()  # without TensorFlow's start-up banner on stderr

    from train.config import TWO_D, ModelConfig
    from train.macs import frame_receptive_field
    from train.models import REGISTRY, build

    if REGISTRY[model].family == TWO_D:
        return None
    span = frame_receptive_field(build(ModelConfig(name=model, sample_rate=rate)))
    keras.backend.clear_session()
    return span


def _recipe_statements(groups: dict[str, list[dict]]) -> list[str]:
    """Same model, task and checkpoint rule trained with several recipes or lengths: what they changed."""
    by: dict[tuple, list[dict]] = {}
    for rows in groups.values():
        for r in rows:
            by.setdefault((r["dataset"], r["protocol"], r["sample_rate"], r["model"], r["monitor"]), []).append(r)
    out = []
    for (dataset, protocol, rate, model, monitor), rows in sorted(by.items()):
        if len({(r["recipe"], r["max_epochs"]) for r in rows}) < 2:
            continue
        rows = sorted(rows, key=lambda r: (r["recipe"] != DEFAULT_RECIPE, r["max_epochs"] or 0, r["accuracy"]))
        # runs with another --window are another model size: say which (built from their stored config)
        sized = len({r.get("window_samples") for r in rows}) > 1
        parts = "; ".join(f"{r['recipe']}{_on(r)}, {r['max_epochs']} epochs: {100 * r['accuracy']:.1f} ± {100 * r['accuracy_std']:.1f} % "
                          f"({r['folds']} folds, {Path(r['run']).name}{_size(r) if sized else ''})" for r in rows)
        out.append(f"Training recipe ({dataset} · {protocol} · {rate} Hz, {model}, kept by {monitor}): {parts}.")
    return out


def _size(r: dict) -> str:
    """", N-sample window: P params, M M MACs" for a row whose model size is known, else ""."""
    if r.get("params") is None:
        return ""
    return f", {r['window_samples']}-sample window: {r['params']:,} params, {r['macs'] / 1e6:.1f} M MACs"


@functools.lru_cache(maxsize=None)
def _size_of(model_config_json: str) -> dict:
    """num_classes, params and MACs per window of the model a stored ModelConfig builds."""
    from train.quiet import import_keras

    keras = import_keras()  # without TensorFlow's start-up banner on stderr

    from train.config import ModelConfig
    from train.models import describe

    config = ModelConfig.from_dict(json.loads(model_config_json))
    d = describe(config)
    keras.backend.clear_session()
    return {"num_classes": config.num_classes, "params": d["params"], "macs": d["macs"]}


def _fmt_or_dash(value: float | None, spec: str) -> str:
    """A table cell: ``value`` formatted with ``spec``, "–" where the run did not record it."""
    return "–" if value is None else format(value, spec)


def _fmt_size(r: dict) -> str:
    """"params | M MACs" table cells, "–" where the run stored no ModelConfig."""
    return "– | –" if r.get("params") is None else f"{r['params']:,} | {r['macs'] / 1e6:.1f}"


OVERVIEW_CAPTION = ("clip accuracy %   (bars: each model's best seed-0 run of any recipe, named beside it, mean ± std "
                    "over folds; orange tick: mean over that training's seeds, where repeated; diamonds: the paper)")


def overview(groups: dict[str, list[dict]]) -> list[tuple[str, list[dict]]]:
    """The chart's panels: one per task (dataset · protocol · rate), each model once with its best
    run whatever the recipe (_overview_rank), best first. The best of several recipes flatters a
    little: the orange tick of a repeated training shows by how much."""
    seeds = _seed_runs(groups)
    tasks: dict[str, dict[str, dict]] = {}
    for rows in groups.values():
        for r in rows:
            best = tasks.setdefault(f"{r['dataset']} · {r['protocol']} · {r['sample_rate']} Hz", {})
            if r["model"] not in best or _overview_rank(r) > _overview_rank(best[r["model"]]):
                best[r["model"]] = r
    panels = []
    for task, by_model in tasks.items():
        rows = []
        for r in sorted(by_model.values(), key=lambda r: -r["accuracy"]):
            rule = "" if r["monitor"] == "val_loss" else f", kept by {r['monitor']}"
            same = [s["accuracy"] for s in seeds[_same_training(r)].values()]
            seed = f", seed {r['seed']}" if r["seed"] else ""
            rows.append({**r, "label": f"{r['model']} · {r['recipe']}{rule}, {r['max_epochs']} ep{seed}{_on(r)}",
                         "seed_mean": statistics.mean(same) if len(same) > 1 else None})
        panels.append((task, rows))
    return panels


def _overview_rank(r: dict) -> tuple:
    """Complete runs first, then seed 0 (the lucky one of several seeds would flatter), then accuracy."""
    return r["complete"], not r["seed"], r["accuracy"]


def _machine_line(d: dict) -> str:
    where = f"{d.get('cpu', '?')}, {d.get('nproc', '?')} logical CPUs"
    if d.get("accelerator"):
        where += f", training on {d['accelerator']} (Keras {d.get('keras_backend', '?')} backend)"
    return f"Machine: {where} (shared with other jobs, so times are indicative), Python {d.get('python', '?')}."


def markdown(groups: dict[str, list[dict]], notes: list[str], figure: str | None = None) -> str:
    lines = ["# Accuracy: trained models beside the papers' numbers", "",
             "Generated by `python -m train.report` from `runs/*/summary.json` (written by `python -m train`), "
             "with `--keep` carrying over the rows of the previous accuracy.json whose run folders (checkpoints, "
             "not committed) are not at hand; do not edit by hand. Accuracy is clip-level (mean of window probabilities), mean ± std over the "
             "folds run (the folds are the whole population: std with divisor N); over seeds, ± is the sample "
             "std (divisor N − 1, seeds being a sample of many). Relative performance and training time are to the lowest in the same task, as the "
             "1D paper's Table 3 (its values in the last column); rows with fewer folds than the task, or "
             "different epochs, are not strictly comparable. Training time is wall seconds per fold and, for runs "
             "since the field exists, the training process's CPU seconds per fold (`time.process_time`, all its "
             "threads); a table whose runs all recorded CPU seconds takes its relative training time from them "
             "(marked *cpu*), since they hardly change when other jobs share the machine; wall times taken "
             "while other jobs shared the CPU are indicative only. Paper numbers: `shared/docs/model-spec.md`.", ""]
    machines = {_machine_line(r["machine"]) for rows in groups.values() for r in rows if r["machine"]}
    lines += sorted(machines)
    lines.append("")
    if figure:
        lines += [f"![Each model's best run per task beside the paper's number; the tables below hold every run]({figure})", ""]
    for key, rows in groups.items():
        lines += [f"## {key}", "", "| model | run | folds | accuracy % | macro F1 % | paper accuracy % | rel. perf. | rel. train time | train s/fold | CPU s/fold | epochs (max) | kept by (mean epoch) | recipe | params | M MACs/window | paper Table 3 (perf/time) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            t3 = f"{r['paper_table3'][0]:.2f} / {r['paper_table3'][1]:.2f}" if r["paper_table3"] else "–"
            lines.append(f"| {r['label']} | {Path(r['run']).name} | {r['folds']} | {100 * r['accuracy']:.1f} ± {100 * r['accuracy_std']:.1f} | "
                         f"{100 * r['f1']:.1f} | {r['paper']} | {r['relative_performance']:.2f} | {_fmt_relative_time(r)} | "
                         f"{r['train_seconds']:.0f} | {_fmt_or_dash(r.get('train_cpu_seconds'), '.0f')} | {r['epochs']:.0f} ({r['max_epochs']}) | {r['monitor']} ({_fmt_or_dash(r['best_epoch'], '.1f')}) | "
                         f"{r['recipe']} | {_fmt_size(r)} | {t3} |")
        tasks = sorted({r["paper_task"] for r in rows if r["paper_task"]})
        clips = sorted({r["clips"] for r in rows if r["clips"]})
        lines += ["", f"Our data: {', '.join(map(str, clips)) or '?'} clips."
                  + (" Paper task: " + "; ".join(tasks) + "." if tasks else "")]
        lines.append("")
    lines += ["## Statements", ""] + [f"- {s}" for s in _statements(groups)] + [""]
    weak = _weakest_lines(groups)
    if weak:
        lines += ["## Where the errors sit", "",
                  "The (fold, class) cells with the lowest recall, from each run's `summary.json` (written since the "
                  "field exists; `recall_by_fold.png` in the run folder shows every cell). A few cells far below "
                  "the mean, each with the class it is mostly taken for, mean the errors gather in one speaker's or "
                  "fold's version of one class, which the mean accuracy does not show.", ""] + [f"- {w}" for w in weak] + [""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def _fmt_relative_time(r: dict) -> str:
    return f"{r['relative_training_time']:.2f}" + (" *cpu*" if r.get("relative_time_from") == "cpu" else "")


def _weakest_lines(groups: dict[str, list[dict]], n: int = 3) -> list[str]:
    """One line per run that recorded its weakest cells: the lowest ``n``, in table order."""
    seen, out = set(), []
    for rows in groups.values():
        for r in rows:
            cells = r.get("weakest_cells")
            if not cells or r["run"] in seen:
                continue
            seen.add(r["run"])
            text = ", ".join(f"{c['fold']} \"{c['label']}\" {100 * c['recall']:.0f} %"
                             + (f" (taken for \"{c['taken_for']}\")" if c.get("taken_for") else "") for c in cells[:n])
            out.append(f"{Path(r['run']).name} ({r['model']}, {r['dataset']} {r['protocol']}, "
                       f"{100 * r['accuracy']:.1f} % mean): {text}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m train.report", description="Gather run folders (each with summary.json) "
                                "into a Markdown accuracy report, with a JSON file of the same rows and a PNG chart "
                                "(ours beside the papers' numbers) beside it.")
    p.add_argument("runs", nargs="*", help="run folders, e.g. runs/*")
    p.add_argument("--keep", type=Path, metavar="JSON",
                   help="an earlier report's JSON (e.g. benchmarks/results/accuracy.json): its rows are carried over, "
                        "except those of the run folders given, which are read afresh. Run folders hold checkpoints "
                        "and are not committed, so this is how new runs join the committed report")
    p.add_argument("--out", default="benchmarks/results/accuracy.md",
                   help="Markdown file to write, JSON and PNG beside it (default: %(default)s: this overwrites the "
                        "committed report; give another file to try things out, or --keep its JSON to add runs to it)")
    args = p.parse_args(argv)
    missing = [r for r in args.runs if not Path(r).exists()]
    if missing:  # a mistyped folder; files such as runs/*.log from a glob are skipped below
        print(f"error: no such run folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        runs, notes = load_runs([Path(r) for r in args.runs if Path(r).is_dir()])
        kept = load_kept(args.keep) if args.keep else []
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for note in notes:  # also in the report's Notes, but a run left out must not pass unseen
        print(f"note: {note}", file=sys.stderr)
    rows = []
    for s in runs:
        try:
            rows.append(run_row(s))
        except (KeyError, TypeError, AttributeError) as e:  # a hand-made or foreign summary.json: a field missing
            what = f"no {e.args[0]!r}" if isinstance(e, KeyError) else f"a malformed field ({type(e).__name__})"
            print(f"error: {Path(s['run']) / 'summary.json'} has {what}; remove the run folder from the arguments "
                  "or train it again", file=sys.stderr)
            return 2
    if args.keep:
        fresh = {_same_run(r["run"]) for r in rows}
        kept = [r for r in kept if _same_run(r["run"]) not in fresh]
        rows += kept
    if not rows:
        print("error: no run folder with a finished fold among the arguments, and nothing kept (--keep)", file=sys.stderr)
        return 2
    out = Path(args.out)
    why = unwritable(out)  # a folder got the PNG beside it, then failed: now refused before any write
    if why:
        print(f"error: cannot write the report to {out} ({why})", file=sys.stderr)
        return 1
    groups = rows_by_group(rows)
    figure = out.with_suffix(".png")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        accuracy_png(overview(groups), figure, OVERVIEW_CAPTION)
        for path, text in ((out, markdown(groups, notes, figure.name)),
                           (out.with_suffix(".json"), json.dumps({"groups": groups, "statements": _statements(groups), "notes": notes}, indent=2))):
            write_atomic(path, text + "\n")
    except OSError as e:
        print(f"error: cannot write the report to {out} ({e.strerror or type(e).__name__})", file=sys.stderr)
        return 1
    print(f"wrote {out}, {out.with_suffix('.json')} and {figure.name} ({len(runs)} runs read"
          + (f", {len(kept)} kept from {args.keep}" if args.keep else "") + ")")
    return 0


if __name__ == "__main__":
    from runtime.cli import exit_with

    exit_with(main, "python -m train.report")
