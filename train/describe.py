"""What a dataset holds before any training: clips, classes, speakers, folds, file formats and
clip durations against the model windows (1 s for the 1D models, 4 s for the 2D ones).

``python -m train.describe --data fsdd=PATH --data emodb=PATH ... --out benchmarks/results/datasets.md``
reads only the file headers (no decoding), writes a Markdown table per dataset, the same figures as
JSON and a PNG of the duration histograms. Unreadable files stop it with a one-line error that
names them, as the loaders do for missing ones.

Numbers (:func:`summarise`) are apart from file reading (:func:`read_headers`) and writing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from runtime.cli import ArgumentParser
from runtime.files import write_atomic
from train.config import DEFAULT_WINDOW_SECONDS
from train.data import LOADERS, DataError, Dataset, _names, _why_unreadable, data_pair, load_dataset, unwritable

# The windows the zoo's models take by default (1D: 1 s, 2D: 4 s): a clip shorter than a window is
# zero-padded, a longer one gives several windows.
WINDOWS_S = tuple(sorted(set(DEFAULT_WINDOW_SECONDS.values())))


@dataclass(frozen=True)
class Header:
    """What a file's header says: frames, sample rate, channels, container and sample format."""

    frames: int
    sample_rate: int
    channels: int
    format: str
    subtype: str

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def read_headers(paths: Sequence[Path], progress: bool = True) -> list[Header]:
    """soundfile's header of every file, in order. Raises DataError naming the unreadable ones."""
    from tqdm import tqdm

    headers, bad = [], []
    for path in tqdm(paths, desc="reading headers", unit="file", disable=not progress, leave=False):
        try:
            info = sf.info(str(path))
        except Exception as e:  # soundfile raises LibsndfileError, RuntimeError, TypeError ...
            bad.append(f"{path} ({_why_unreadable(Path(path), e)})")
            continue
        if info.frames <= 0 or info.samplerate <= 0:
            bad.append(f"{path} (empty)")
            continue
        headers.append(Header(int(info.frames), int(info.samplerate), int(info.channels), info.format, info.subtype))
    if bad:
        raise DataError(f"{len(bad)} unreadable or empty audio file(s): {_names(bad)}")
    return headers


def _counts(values) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(values).items(), key=lambda kv: str(kv[0]))}


def summarise(dataset: Dataset, headers: Sequence[Header]) -> dict:
    """The figures of one dataset (plain JSON types). ``headers`` align with ``dataset.clips``."""
    if len(headers) != len(dataset.clips):
        raise ValueError(f"{len(headers)} headers for {len(dataset.clips)} clips")
    seconds = np.array([h.seconds for h in headers])
    per_class = Counter(dataset.labels[c.label] for c in dataset.clips)
    return {
        "dataset": dataset.name,
        "clips": len(dataset.clips),
        "hours": float(seconds.sum() / 3600.0),
        "classes": {name: per_class.get(name, 0) for name in dataset.labels},
        "speakers": len({c.speaker for c in dataset.clips}) if dataset.has_speakers else None,
        "folds": _counts(c.fold for c in dataset.clips) if dataset.has_folds else None,
        "sources": len({c.source for c in dataset.clips}),
        "sample_rates": _counts(h.sample_rate for h in headers),
        "channels": _counts(h.channels for h in headers),
        "formats": _counts(f"{h.format}/{h.subtype}" for h in headers),
        "seconds": {"min": float(seconds.min()), "median": float(np.median(seconds)), "mean": float(seconds.mean()),
                    "p90": float(np.percentile(seconds, 90)), "max": float(seconds.max())},
        # share of clips no longer than each window: those are zero-padded to it
        "within_window": {f"{w:g}": float(np.mean(seconds <= w + 1e-9)) for w in WINDOWS_S},
        "durations": [round(float(s), 4) for s in seconds],
    }


def _spread(counts: dict[str, int]) -> str:
    """'7 (12–34 clips each)' or one value as '3 (all 500)'."""
    values = list(counts.values())
    lo, hi = min(values), max(values)
    return f"{len(values)} ({lo}–{hi} clips each)" if lo != hi else f"{len(values)} (all {lo})"


def _listing(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} ({v})" if len(counts) > 1 else str(k) for k, v in counts.items())


def markdown(stats: Sequence[dict], data: Sequence[tuple[str, str]], command: str) -> str:
    lines = ["# Datasets: what each one holds", "",
             f"Written by `{command}` from the file headers (no decoding); do not edit by hand. "
             f"Durations are per clip; a clip no longer than a model's window ({', '.join(f'{w:g} s' for w in WINDOWS_S)}: "
             "the 1D and 2D models' defaults) is zero-padded to it, a longer one gives several windows. "
             "Histograms: datasets.png.", ""]
    header = ["", *[s["dataset"] for s in stats]]
    rows = [
        ("folder", [f"`{path}`" for _, path in data]),
        ("clips", [str(s["clips"]) for s in stats]),
        ("hours of audio", [f"{s['hours']:.2f}" for s in stats]),
        ("classes", [_spread(s["classes"]) for s in stats]),
        ("speakers", [str(s["speakers"]) if s["speakers"] is not None else "–" for s in stats]),
        ("official folds", [_listing(s["folds"]) if s["folds"] else "–" for s in stats]),
        ("source recordings", [str(s["sources"]) for s in stats]),
        ("sample rates (clips)", [_listing(s["sample_rates"]) for s in stats]),
        ("channels (clips)", [_listing(s["channels"]) for s in stats]),
        ("format (clips)", [_listing(s["formats"]) for s in stats]),
        ("seconds: min / median / mean", [f"{s['seconds']['min']:.2f} / {s['seconds']['median']:.2f} / {s['seconds']['mean']:.2f}" for s in stats]),
        ("seconds: 90th percentile / max", [f"{s['seconds']['p90']:.2f} / {s['seconds']['max']:.2f}" for s in stats]),
        *[(f"clips ≤ {w} s", [f"{100 * s['within_window'][w]:.1f} %" for s in stats]) for w in stats[0]["within_window"]],
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([name, *cells]) + " |" for name, cells in rows]
    lines += ["", "Clips per class:", ""]
    for s in stats:
        lines.append(f"- {s['dataset']}: " + ", ".join(f"{k} {v}" for k, v in s["classes"].items()))
    return "\n".join(lines) + "\n"


def histogram_png(stats: Sequence[dict], path: Path) -> None:
    """One panel per dataset: clip durations, with the model windows marked."""
    from train.plots import _save, plt

    fig, axes = plt.subplots(1, len(stats), figsize=(3.6 * len(stats) + 0.6, 2.8), squeeze=False)
    for ax, s in zip(axes[0], stats):
        seconds = np.array(s["durations"])
        ax.hist(seconds, bins=40, color="#4c72b0")
        for w in WINDOWS_S:
            ax.axvline(w, color="#dd8452", linestyle="--", linewidth=1)
            ax.text(w, ax.get_ylim()[1], f"{w:g} s window ", color="#dd8452", fontsize=7, rotation=90, ha="right", va="top")
        ax.set_title(f"{s['dataset']} ({s['clips']} clips)", fontsize=9)
        ax.set_xlabel("clip duration (s)")
    axes[0][0].set_ylabel("clips")
    _save(fig, path)


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m train.describe",
        description="Describe datasets in their original layouts before training: clips, classes, speakers,\n"
        "official folds, source recordings, sample rates, channels, formats and clip durations against the\n"
        "model windows (1 s and 4 s). Reads file headers only. Writes a Markdown table, JSON beside it and\n"
        "a PNG of the duration histograms.",
        epilog="example:\n  python -m train.describe --data fsdd=../shared/data/fsdd --data emodb=../shared/data/emodb "
        "--out benchmarks/results/datasets.md",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", required=True, metavar="NAME=PATH",
                   help=f"a dataset layout and its folder; repeat per dataset. Layouts: {' '.join(LOADERS)}")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/datasets.md"),
                   help="Markdown file to write; .json and .png beside it (default: benchmarks/results/datasets.md)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    why = unwritable(args.out)  # said before the headers are read, and nothing is then written beside it
    if why:
        print(f"error: cannot write to {args.out} ({why})", file=sys.stderr)
        return 1
    try:
        data = [data_pair(item) for item in args.data]  # an unknown NAME: load_dataset's one line
        stats = []
        for name, folder in data:
            dataset = load_dataset(name, Path(folder))
            if not dataset.clips:
                raise DataError(f"{name}: no audio clips in {folder}")
            stats.append(summarise(dataset, read_headers([c.path for c in dataset.clips], progress=not args.quiet)))
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    command = "python -m train.describe " + " ".join(f"--data {n}={f}" for n, f in data) + f" --out {args.out}"
    figures = [{k: v for k, v in s.items() if k != "durations"} for s in stats]  # per-clip list: the PNG's
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out, markdown(stats, data, command))
        write_atomic(args.out.with_suffix(".json"), json.dumps({"command": command, "datasets": figures}, indent=1) + "\n")
        histogram_png(stats, args.out.with_suffix(".png"))
    except OSError as e:
        print(f"error: cannot write to {args.out} ({e.strerror or type(e).__name__})", file=sys.stderr)
        return 1
    print(f"wrote {args.out}, {args.out.with_suffix('.json').name} and {args.out.with_suffix('.png').name}")
    return 0


if __name__ == "__main__":
    from runtime.cli import exit_with

    exit_with(main, "python -m train.describe")
