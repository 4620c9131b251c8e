"""What averaging finished runs would give: an ensemble of their fold models, scored on the same tests.

    python -m train.ensemble runs/fsdd_sincnet_seg4_e50_seed1 runs/fsdd_sincnet_seg4_e50_seed2 \\
        --data ../shared/data/fsdd --out benchmarks/results/ensemble_fsdd.md

For every fold that all runs finished, each run's fold model scores that fold's test clips (clip-level
probabilities, the mean over its windows, at its own rate); the ensemble's prediction is the mean of
those probabilities. The table gives each member alone (as its result.json has it, rescored here), the
ensemble, and "any member right": the share of clips at least one member classifies correctly, what an
oracle picking the right member for each clip would reach (averaging seldom comes near it; it can pass it
only on a clip where every member is wrong but their mean is right).

An ensemble of N members costs N times the parameters and MACs of one, so it does not meet a
size budget that one member meets; it measures how far the members' errors differ, which is what a
distilled student (``python -m train --teacher``) or a larger model could recover. The members must share
dataset, protocol and each fold's test clips (under ``kfold`` the seed redraws the folds, so runs with
other seeds are refused); none of them saw another fold's test clips as training data of that fold.

Writes a Markdown table, the same numbers as JSON, and a bar chart per fold.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from runtime.cli import ArgumentParser
from runtime.files import write_atomic
from train.data import AudioCache, DataError, check_out, decode, load_dataset
from train.finished import finite_probs, load_fold_model, matched_folds, read_run, run_folds, warn_if_rescored
from train.metrics import confusion_matrix, scores


def combine(member_probs: Sequence[np.ndarray], labels: np.ndarray) -> dict:
    """Members' clip probabilities, each float (n, C), and int (n,) labels -> the ensemble's scores.

    Returns ``{"members": [accuracy, ...], "accuracy", "macro_f1", "any_right", "confusion"}``: each
    member's accuracy, the accuracy and macro F1 of the mean probability's argmax, the share of clips
    at least one member gets right, and the ensemble's confusion matrix (a list of lists).
    """
    probs = np.stack([np.asarray(p, dtype=np.float64) for p in member_probs])  # (members, n, C)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 3 or probs.shape[1] != labels.shape[0] or probs.shape[1] == 0:
        raise ValueError(f"member probabilities {probs.shape[1:]} do not match {labels.shape[0]} labels")
    right = probs.argmax(axis=2) == labels  # (members, n)
    cm = confusion_matrix(labels, probs.mean(axis=0).argmax(axis=1), probs.shape[2])
    s = scores(cm)
    return {"members": [float(r.mean()) for r in right], "accuracy": s["accuracy"], "macro_f1": s["f1"],
            "any_right": float(right.any(axis=0).mean()), "confusion": cm.tolist()}


@dataclass(frozen=True)
class Member:
    """One run: its model, rate, parameters and MACs per window (of its first fold model)."""

    run: str
    model: str
    sample_rate: int
    params: int
    macs: int


@dataclass(frozen=True)
class FoldScore:
    """One fold: ``clips`` test clips; each member's accuracy, the ensemble's, and any member right."""

    fold: str
    clips: int
    members: tuple[float, ...]
    accuracy: float
    macro_f1: float
    any_right: float


@dataclass(frozen=True)
class Ensemble:
    dataset: str
    protocol: str
    members: tuple[Member, ...]
    folds: tuple[FoldScore, ...]
    left_out: tuple[str, ...] = ()  # folds some member has not finished

    def column(self, key: str | int) -> list[float]:
        """Per-fold values: a member's accuracy (an index) or ``accuracy``/``macro_f1``/``any_right``."""
        return [f.members[key] if isinstance(key, int) else getattr(f, key) for f in self.folds]

    def best_member(self) -> int:
        """Index of the member with the highest mean accuracy over folds."""
        return max(range(len(self.members)), key=lambda i: float(np.mean(self.column(i))))


def common_folds(runs: Sequence[Path], data: Path) -> tuple[list[dict], object, list[str], dict, list[str]]:
    """Check that ``runs`` can be combined and match their finished folds by name.

    Returns (each run's run.json, Dataset, fold names all finished, {run: {fold name: (dir, Fold,
    result)}}, fold names left out). DataError (one line) for runs on other datasets or protocols, for
    a fold whose test clips differ between runs, or for no fold finished by all.
    """
    cfgs = [read_run(r) for r in runs]
    for key in ("dataset", "protocol"):
        values = sorted({str(c[key]) for c in cfgs})
        if len(values) > 1:
            raise DataError(f"the runs differ in {key} ({', '.join(values)}); an ensemble needs one {key}")
    dataset = load_dataset(cfgs[0]["dataset"], data)
    done = {}
    for run, cfg in zip(runs, cfgs):
        done[run] = {fold.name: (fold_dir, fold, result)
                     for fold_dir, fold, result in matched_folds(run, run_folds(cfg, dataset), data)}
    names = list(done[runs[0]])
    common = [n for n in names if all(n in done[r] for r in runs)]
    left_out = sorted({n for r in runs for n in done[r]} - set(common))
    if not common:
        raise DataError("no fold is finished by every run (" + ", ".join(f"{r}: {len(done[r])}" for r in runs)
                        + " finished); runs with another --seed or --k have other kfold folds")
    for name in common:
        test = set(done[runs[0]][name][1].test)
        for r in runs[1:]:
            if set(done[r][name][1].test) != test:
                raise DataError(f"{r}: fold {name!r} tests other clips than {runs[0]}'s (another --seed or --k "
                                "redraws the folds); an ensemble needs the same test clips in every run")
    return cfgs, dataset, common, done, left_out


def ensemble_runs(runs: Sequence[Path], data: Path, cache_dir: Path | None = None, progress: bool = False) -> Ensemble:
    """Score every run's fold models and their mean on each fold all runs finished (see the module doc).
    Raises DataError (one line) as :func:`common_folds`, or for a model file that does not load or
    gives non-finite probabilities."""
    runs = [Path(r) for r in runs]
    try:
        distinct = len({r.resolve() for r in runs})
    except (OSError, RuntimeError) as e:  # a symlink loop: RuntimeError before Python 3.13, OSError after
        raise DataError(f"cannot resolve a run folder: {e}") from None
    if len(runs) < 2 or distinct < len(runs):
        raise DataError(f"an ensemble needs at least two different run folders, got {', '.join(map(str, runs))}")
    cfgs, dataset, names, done, left_out = common_folds(runs, data)
    missing = [f"{r}/{done[r][n][0].name}" for n in names for r in runs if not (done[r][n][0] / "model.keras").is_file()]
    if missing:  # before minutes of scoring, not at the fold that lacks it
        raise DataError(f"no model.keras in {', '.join(missing)}; train those folds again")

    from train.fit import predict_clips  # imports TensorFlow: after the checks, so a refusal is quick
    from train.macs import count_macs
    cache = AudioCache(cache_dir)
    members: dict[Path, Member] = {}
    rows = []
    it = names
    if progress:
        from tqdm import tqdm

        it = tqdm(names, desc="ensemble", unit="fold", leave=False)
    for name in it:
        test = done[runs[0]][name][1].test
        clips = [dataset.clips[i] for i in test]
        labels = np.array([c.label for c in clips])
        probs = []
        for run, cfg in zip(runs, cfgs):
            fold_dir, fold, result = done[run][name]
            model, meta = load_fold_model(run, fold_dir, fold, dataset, data)
            rate = int(meta["sample_rate"])
            p = finite_probs(predict_clips(model, decode(clips, rate, cache), int(meta["window_samples"]),
                                           int(meta["hop_samples"])), f"{run}: fold_{fold.index}/model.keras")
            warn_if_rescored(run, fold, result, float((p.argmax(axis=1) == labels).mean()), len(clips), data)
            if run not in members:
                members[run] = Member(str(run), str(cfg["model"]), rate,
                                      int(model.count_params()), int(count_macs(model)["total"]))
            probs.append(p)
        s = combine(probs, labels)
        rows.append(FoldScore(name, len(clips), tuple(s["members"]), s["accuracy"], s["macro_f1"], s["any_right"]))
    return Ensemble(cfgs[0]["dataset"], cfgs[0]["protocol"], tuple(members[r] for r in runs), tuple(rows),
                    tuple(left_out))


def _pct(values: Sequence[float]) -> str:
    """Mean ± std over folds (divisor N, as ``summary.json``), in percent."""
    return f"{100 * np.mean(values):.1f} ± {100 * np.std(values):.1f} %"


def markdown(e: Ensemble, figure: str, command: str, host: dict) -> str:
    folds = [f.fold for f in e.folds]
    params = sum(m.params for m in e.members)
    macs = sum(m.macs for m in e.members)
    lines = [f"# Ensemble of {len(e.members)} runs: {e.dataset}, {e.protocol}", "",
             f"Generated by `{command}`; do not edit by hand. Host: {host.get('cpu', '?')}, {host.get('platform', '?')}. "
             "Each run's fold model scores that fold's test clips; the ensemble takes the mean of their clip "
             "probabilities. \"Any member right\" is the share of clips at least one member gets right: what an oracle "
             "picking the right member for each clip would reach. Mean ± std over folds (divisor N). The ensemble "
             f"costs the members' parameters and MACs together ({params:,} parameters; {macs / 1e6:.1f} M MACs to "
             "run one window through every member), so it does not fit the budget one member fits.", "",
             f"![per-fold accuracy]({figure})", "",
             "| | model | rate | parameters | MACs | " + " | ".join(folds) + " | mean |",
             "|---|---|---|---|---|" + "---|" * len(folds) + "---|"]
    for i, m in enumerate(e.members):
        cells = " | ".join(f"{100 * v:.1f}" for v in e.column(i))
        lines.append(f"| {Path(m.run).name} | {m.model} | {m.sample_rate} Hz | {m.params:,} | {m.macs / 1e6:.2f} M | "
                     f"{cells} | {_pct(e.column(i))} |")
    for label, key in (("**ensemble** (mean probability)", "accuracy"), ("any member right", "any_right")):
        cells = " | ".join(f"{100 * v:.1f}" for v in e.column(key))
        cost = f"{params:,} | {macs / 1e6:.2f} M" if key == "accuracy" else "– | –"
        lines.append(f"| {label} | | | {cost} | {cells} | {_pct(e.column(key))} |")
    best = e.best_member()
    gain = 100 * (np.mean(e.column("accuracy")) - np.mean(e.column(best)))
    lines += ["", f"Ensemble macro F1: {_pct(e.column('macro_f1'))}. Against its best member "
              f"({Path(e.members[best].run).name}): {gain:+.1f} points on the mean."]
    if e.left_out:
        lines.append(f"Left out (not finished by every run): {', '.join(e.left_out)}.")
    return "\n".join(lines) + "\n"


def ensemble_png(e: Ensemble, path: Path) -> None:
    """Grouped bars per fold: each member, the ensemble, and any member right (hatched)."""
    from train.plots import _save, plt

    folds = [f.fold for f in e.folds]
    bars = [(Path(m.run).name, e.column(i), {}) for i, m in enumerate(e.members)]
    bars += [("ensemble", e.column("accuracy"), {"color": "k"}),
             ("any member right", e.column("any_right"), {"color": "w", "edgecolor": "k", "hatch": "//"})]
    width = 0.8 / len(bars)
    x = np.arange(len(folds))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.3 * len(folds) * len(bars) + 1), 4.0))
    for j, (label, values, style) in enumerate(bars):
        ax.bar(x - 0.4 + (j + 0.5) * width, [100 * v for v in values], width, label=label, **style)
    ax.set_xticks(x, folds, fontsize=8, rotation=20 if len(folds) > 6 else 0)
    ax.set_ylabel("test accuracy, %")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
    _save(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(
        prog="python -m train.ensemble",
        description="Score finished runs' fold models together: each alone, the mean of their probabilities, "
        "and the share of clips any of them gets right, on every fold all of them finished. Writes a Markdown "
        "table, JSON and a bar chart.")
    p.add_argument("runs", nargs="+", type=Path,
                   help="two or more run folders written by python -m train: one dataset, protocol and set of test folds")
    p.add_argument("--data", type=Path, required=True, help="the dataset the runs were trained on, in its original layout")
    p.add_argument("--out", type=Path, required=True, help="Markdown file to write; .json and .png go beside it")
    p.add_argument("--cache-dir", type=Path, default=None, help="decoded-audio cache, as python -m train's")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    try:
        check_out(args.out)  # before the scoring: minutes of work must not end with nowhere to write
        e = ensemble_runs(args.runs, args.data, args.cache_dir, not args.quiet)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from train.__main__ import machine

    host = machine()
    command = "python -m train.ensemble " + " ".join([*(str(r) for r in args.runs), "--data", "DATA", "--out", str(args.out)])
    png = args.out.with_suffix(".png")
    try:  # checked above, but a disk can fill or a folder vanish while the runs are scored
        args.out.parent.mkdir(parents=True, exist_ok=True)
        ensemble_png(e, png)
        write_atomic(args.out.with_suffix(".json"),
                     json.dumps({"command": command, "host": host, **asdict(e)}, indent=1) + "\n")
        write_atomic(args.out, markdown(e, png.name, command, host))
    except OSError as err:
        print(f"error: cannot write to {args.out} ({err.strerror or type(err).__name__})", file=sys.stderr)
        return 1
    best = np.mean(e.column(e.best_member()))
    print(f"{len(e.folds)} fold(s): best member {100 * best:.1f} %, ensemble {_pct(e.column('accuracy'))}, "
          f"any member right {_pct(e.column('any_right'))}")
    print(f"wrote {args.out}, {args.out.with_suffix('.json').name} and {png.name}")
    return 0


if __name__ == "__main__":
    from runtime.cli import exit_with

    exit_with(main, "python -m train.ensemble")
