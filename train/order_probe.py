"""How much a trained model relies on the order of events in a clip.

    python -m train.order_probe runs/fsdd_convdf_w1_e80 runs/fsdd_sincnet_e50_kd3 \\
        --data ../shared/data/fsdd --out benchmarks/results/order_probe.md

Every finished fold checkpoint of each run scores its own test clips as they are (the accuracy
its result.json holds), and with each clip cut into chunks of ``--chunk`` seconds whose order is
shuffled (``--shuffles`` seeded orders per clip, never the original one; the mean is reported).
Several ``--chunk`` lengths give a curve: the 1D models should hold until the chunks get shorter
than their frames. The sound inside each chunk is untouched. The 1D zoo averages frame features over time
(global average pooling after a receptive field of 18-54 ms, see ``train.macs.frame_receptive_field``),
so with chunks longer than that field only the frames across a seam change and its prediction should
barely move; the 2D zoo flattens its feature map in time order into a dense layer and may lean on
the order. The gap between the two says whether order is what the 1D models miss.

Writes a Markdown table, the same rows as JSON, and a chart beside them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from runtime.cli import ArgumentParser
from runtime.files import write_atomic
from train.data import AudioCache, DataError, check_out, decode, load_dataset
from train.finished import load_fold_model, matched_folds, read_run, run_folds, warn_if_rescored


def shuffle_chunks(audio: np.ndarray, chunk: int, rng: np.random.Generator) -> np.ndarray:
    """float32 (n,) -> float32 (n,): ``audio`` cut into consecutive chunks of ``chunk`` samples (the
    last one may be shorter), put back in a random order that is never the original one when there
    are two chunks or more. A clip of one chunk comes back unchanged."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 sample, got {chunk}")
    pieces = [audio[i:i + chunk] for i in range(0, len(audio), chunk)]
    if len(pieces) < 2:
        return np.array(audio, dtype=np.float32, copy=True)
    order = np.arange(len(pieces))
    while (order == np.arange(len(pieces))).all():
        order = rng.permutation(len(pieces))
    return np.concatenate([pieces[i] for i in order]).astype(np.float32, copy=False)


@dataclass(frozen=True)
class FoldProbe:
    """One fold: ``clips`` test clips; accuracy as is and per shuffle; share of clips whose
    predicted class is the same after shuffling (mean over shuffles)."""

    fold: str
    clips: int
    accuracy: float
    result_accuracy: float  # the fold's result.json, for comparison: the same figure unless the data changed
    shuffled: tuple[tuple[float, ...], ...]  # per chunk length, per shuffle
    same_prediction: tuple[float, ...]  # per chunk length


@dataclass(frozen=True)
class RunProbe:
    run: str
    model: str
    dataset: str
    sample_rate: int
    chunks_s: tuple[float, ...]
    frame_rf_ms: float | None  # None: the head reads the whole window in order (Flatten)
    folds: tuple[FoldProbe, ...]
    head_segments: int = 1  # a 1D model trained with --head-segments S: its head reads S segments in order

    def accuracy(self) -> float:
        """Mean over folds of the accuracy as is."""
        return float(np.mean([f.accuracy for f in self.folds]))

    def shuffled(self, c: int) -> float:
        """Mean over folds (and shuffles) of the accuracy with chunks ``chunks_s[c]`` shuffled."""
        return float(np.mean([np.mean(f.shuffled[c]) for f in self.folds]))

    def same_prediction(self, c: int) -> float:
        return float(np.mean([f.same_prediction[c] for f in self.folds]))


# Bounds of the settings: a chunk under a millisecond is a few samples (under one at low rates, which
# shuffle_chunks refuses only after the model has loaded); a chunk longer than a clip leaves it whole,
# which is allowed (a control). Every shuffle is another pass over all test clips of every fold.
MIN_CHUNK_SECONDS = 0.001
MAX_SHUFFLES = 100


def check_settings(chunks_s, shuffles: int) -> tuple[float, ...]:
    """The chunk lengths as a tuple of floats; ValueError (one line) unless each is a finite number
    of seconds from MIN_CHUNK_SECONDS and ``shuffles`` is 1 to MAX_SHUFFLES."""
    chunks_s = tuple(float(c) for c in chunks_s)
    if not chunks_s or not all(MIN_CHUNK_SECONDS <= c < np.inf for c in chunks_s) or not 1 <= shuffles <= MAX_SHUFFLES:
        raise ValueError(f"--chunk must be at least {MIN_CHUNK_SECONDS:g} seconds (finite) and --shuffles 1 to "
                         f"{MAX_SHUFFLES}, got {', '.join(f'{c:g}' for c in chunks_s) or 'no chunk'} and {shuffles}")
    return chunks_s


def probe_run(run: Path, data: Path, chunks_s: tuple[float, ...] = (0.1,), shuffles: int = 3, seed: int = 0,
              cache_dir: Path | None = None, progress: bool = False) -> RunProbe:
    """Score every finished fold of ``run`` (a ``python -m train`` folder) on its test clips from
    ``data``, as they are and with their chunks shuffled. Raises DataError (one line) for a folder
    that is no run, has no finished fold, or a model file that does not load."""
    from train.fit import predict_clips
    from train.macs import frame_receptive_field

    chunks_s = check_settings(chunks_s, shuffles)
    cfg = read_run(run)
    dataset = load_dataset(cfg["dataset"], data)
    done = matched_folds(run, run_folds(cfg, dataset), data)
    if not done:
        raise DataError(f"{run}: no finished fold (fold_*/result.json)")
    cache = AudioCache(cache_dir)
    rows, rate, rf_ms = [], None, None
    it = done
    if progress:
        from tqdm import tqdm

        it = tqdm(done, desc=f"{run.name}", unit="fold", leave=False)
    for fold_dir, fold, result in it:
        model, meta = load_fold_model(run, fold_dir, fold, dataset, data)
        rate, window, hop = int(meta["sample_rate"]), int(meta["window_samples"]), int(meta["hop_samples"])
        rf = frame_receptive_field(model)
        rf_ms = None if rf is None else 1000.0 * rf / rate
        clips = [dataset.clips[i] for i in fold.test]
        labels = np.array([c.label for c in clips])
        audio = decode(clips, rate, cache)
        base = predict_clips(model, audio, window, hop).argmax(axis=1)
        accs, same = [], []
        for c, chunk_s in enumerate(chunks_s):
            chunk, acc, agree = max(1, round(chunk_s * rate)), [], []
            for s in range(shuffles):
                rng = np.random.default_rng([seed, fold.index, chunk, s])  # a length shuffles alike in any sweep
                pred = predict_clips(model, [shuffle_chunks(a, chunk, rng) for a in audio], window, hop).argmax(axis=1)
                acc.append(float((pred == labels).mean()))
                agree.append(float((pred == base).mean()))
            accs.append(tuple(acc))
            same.append(float(np.mean(agree)))
        row = FoldProbe(fold.name, len(clips), float((base == labels).mean()), float(result["accuracy"]),
                        tuple(accs), tuple(same))
        warn_if_rescored(run, fold, result, row.accuracy, len(clips), data)
        rows.append(row)
    return RunProbe(str(run), cfg["model"], cfg["dataset"], rate, chunks_s, rf_ms, tuple(rows),
                    int(cfg.get("head_segments", 1)))


def _rf(p: RunProbe) -> str:
    if p.head_segments > 1:
        return f"{p.head_segments} time segments, in order"
    return "whole window, in order" if p.frame_rf_ms is None else f"{p.frame_rf_ms:.1f} ms, order discarded"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g} ms"


def markdown(probes: list[RunProbe], figure: str, command: str, host: dict) -> str:
    lines = ["# Does the model need the order? Accuracy with each clip's chunks shuffled", "",
             f"Generated by `{command}`; do not edit by hand. Host: {host.get('cpu', '?')}, "
             f"{host.get('platform', '?')}. Each fold's checkpoint scores its own test clips as they are, "
             "then with every clip cut into chunks of the given length put back in a shuffled order (mean over "
             "the shuffles and folds). \"Frame\" is what the model's head sees: the 1D models average frame "
             "features of the given span (or, trained with `--head-segments S`, S time segments in order); the 2D models "
             "flatten their whole window in time order.", "",
             f"![accuracy as is and shuffled]({figure})", "",
             "| run | model | rate | frame | folds | accuracy as is | chunk | chunks shuffled | change, points | same prediction |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for p in probes:
        a = 100 * p.accuracy()
        for c, chunk in enumerate(p.chunks_s):
            s = 100 * p.shuffled(c)
            lines.append(f"| {Path(p.run).name} | {p.model} | {p.sample_rate} Hz | {_rf(p)} | {len(p.folds)} | {a:.1f} % | "
                         f"{_ms(chunk)} | {s:.1f} % | {s - a:+.1f} | {100 * p.same_prediction(c):.1f} % |")
    return "\n".join(lines) + "\n"


def probe_png(probes: list[RunProbe], path: Path) -> None:
    """One chunk length: bars as is / shuffled per run. Several: accuracy against chunk length, one
    line per run, its accuracy as is dashed and a 1D model's frame span marked on the axis."""
    from train.plots import _save, plt

    chunks = probes[0].chunks_s
    if len(chunks) == 1:
        x = np.arange(len(probes))
        fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(probes) + 2), 4.2))
        ax.bar(x - 0.2, [100 * p.accuracy() for p in probes], 0.4, label="as is", color="C0")
        ax.bar(x + 0.2, [100 * p.shuffled(0) for p in probes], 0.4, label=f"{_ms(chunks[0])} chunks shuffled", color="C3")
        ax.set_xticks(x, [f"{Path(p.run).name}\n({p.model})" for p in probes], fontsize=7, rotation=20, ha="right")
    else:
        fig, ax = plt.subplots(figsize=(7.5, 4.6))
        ms = 1000 * np.asarray(chunks)
        for i, p in enumerate(probes):
            color = f"C{i % 10}"
            ax.plot(ms, [100 * p.shuffled(c) for c in range(len(chunks))], "o-", color=color,
                    label=f"{Path(p.run).name} ({p.model})")
            ax.axhline(100 * p.accuracy(), color=color, ls="--", lw=0.8)
            if p.frame_rf_ms is not None:
                ax.plot([p.frame_rf_ms], [2], "^", color=color, ms=8)
        ax.set_xscale("log")
        ax.minorticks_off()  # the log axis's own minor labels would overprint the chunk lengths
        ax.set_xticks(ms, [f"{m:g}" for m in ms])
        ax.set_xlabel("shuffled chunk length, ms (dashed: as is; ▲: a 1D model's frame span)")
        ax.legend(fontsize=7)
    ax.set_ylabel("test accuracy, % (mean over folds)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    if len(chunks) == 1:
        ax.legend(fontsize=8)
    _save(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(
        prog="python -m train.order_probe",
        description="Score trained runs on their own test clips as they are and with each clip's chunks "
        "shuffled in time: how much each model relies on the order of events. Writes a Markdown table, "
        "JSON and a chart (bars for one --chunk, a curve over several).")
    p.add_argument("runs", nargs="+", type=Path, help="run folders written by python -m train, all on one dataset")
    p.add_argument("--data", type=Path, required=True, help="the dataset the runs were trained on, in its original layout")
    p.add_argument("--out", type=Path, required=True, help="Markdown file to write; .json and .png go beside it")
    p.add_argument("--chunk", type=float, nargs="+", default=[0.1], metavar="SECONDS",
                   help="chunk length(s); one row and point per length (default: 0.1, longer than any 1D "
                   "model's frame)")
    p.add_argument("--shuffles", type=int, default=3, help="shuffled orders per clip, averaged (default: 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffles (default: 0)")
    p.add_argument("--cache-dir", type=Path, default=None, help="decoded-audio cache, as python -m train's")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    try:
        check_settings(args.chunk, args.shuffles)
        check_out(args.out)  # before the scoring: minutes of work must not end with nowhere to write
        datasets = sorted({read_run(r)["dataset"] for r in args.runs})  # before any model is scored
        if len(datasets) > 1:
            raise DataError(f"the runs are on several datasets ({', '.join(datasets)}); probe one dataset at a time")
        probes = [probe_run(r, args.data, tuple(args.chunk), args.shuffles, args.seed, args.cache_dir, not args.quiet)
                  for r in args.runs]
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from train.__main__ import machine

    host = machine()
    command = "python -m train.order_probe " + " ".join([*(str(r) for r in args.runs), "--data", "DATA",
                                                          "--chunk", *(f"{c:g}" for c in args.chunk),
                                                          "--shuffles", str(args.shuffles), "--seed", str(args.seed),
                                                          "--out", str(args.out)])  # all it takes to redo it
    png = args.out.with_suffix(".png")
    try:  # checked above, but a disk can fill or a folder vanish while the runs are scored
        args.out.parent.mkdir(parents=True, exist_ok=True)
        probe_png(probes, png)
        write_atomic(args.out.with_suffix(".json"),
                     json.dumps({"command": command, "host": host, "seed": args.seed, "runs": [asdict(pr) for pr in probes]}, indent=1) + "\n")
        write_atomic(args.out, markdown(probes, png.name, command, host))
    except OSError as e:
        print(f"error: cannot write to {args.out} ({e.strerror or type(e).__name__})", file=sys.stderr)
        return 1
    for pr in probes:
        shuffled = ", ".join(f"{100 * pr.shuffled(c):.1f} % ({_ms(t)})" for c, t in enumerate(pr.chunks_s))
        print(f"{Path(pr.run).name}: {100 * pr.accuracy():.1f} % as is; shuffled: {shuffled}")
    print(f"wrote {args.out}, {args.out.with_suffix('.json').name} and {png.name}")
    return 0


if __name__ == "__main__":
    from runtime.cli import exit_with

    exit_with(main, "python -m train.order_probe")
